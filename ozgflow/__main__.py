from ozgflow.cli import main

main()
