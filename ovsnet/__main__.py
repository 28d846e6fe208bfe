from ovsnet.cli import main

main()
