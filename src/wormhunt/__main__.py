from wormhunt.cli import main

main()
