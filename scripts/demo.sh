#!/usr/bin/env bash
# The main job: synthesise the built-in spoken-digit set (offline), train the
# same CNN with no mixing and with SpeechMix over 3 seeds, and compare them.
EXTRAS=audio
source "$(dirname "$0")/env.sh"
exec speechmix demo --out "${OUT:-speechmix-out}" "$@"
