"""`python -m geo_api.cli` runs the iocmap CLI (used to spawn the camera supervisor)."""

from geo_api.cli import main

main()
