#!/bin/sh
# Fail-closed guard for a harness's pre-tool hook: runs the hook command given as arguments
# and turns every failure into the harness's "block" — exit code 2 (Claude Code, Cursor and
# Codex all treat a PreToolUse hook's exit 2 as "block, with stderr as the reason"). Failures:
# any non-zero exit, 127 (the command is not on PATH), a crash (killed by a signal), and the
# guard's own deadline ATRYUM_GUARD_SECONDS (default 3500, below a 3600 s harness timeout).
# Usage: atryum-guard.sh atryum hook --timeout 600
out=$(timeout --kill-after=5 "${ATRYUM_GUARD_SECONDS:-3500}" "$@")
rc=$?
if [ "$rc" -ne 0 ]; then
  echo "atryum hook failed (exit $rc: $1); the call was blocked" >&2
  exit 2
fi
printf '%s\n' "$out"
