#!/usr/bin/env bash
# The main job: on the built-in real spoken digits (FSDD recordings shipped
# with the package, no download), train the default network with no mixing
# and with SpeechMix over 3 seeds on 4 speakers, and compare them on a
# speaker never trained on.
EXTRAS=audio
source "$(dirname "$0")/env.sh"
exec speechmix demo --out "${OUT:-speechmix-out}" "$@"
