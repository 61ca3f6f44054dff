#!/usr/bin/env bash
# Sets up .venv, builds and installs aneforge, and runs the quickstart.
source "$(dirname "$0")/env.sh"
python examples/quickstart.py
