from purser.cli import main

main()
