from roisearch.cli import main

main()
