"""What gateways ask Purser: `/v1/authz` on every call (nginx auth_request, Envoy ext_authz) and `/v1/usage` after it.

Purser is not a proxy: teams keep their nginx, Envoy, Kong or LiteLLM in front of the
models, and those ask here whether a key may make a call and report what it cost.
"""
