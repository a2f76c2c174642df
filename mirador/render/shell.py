"""Generated shell scripts. Every interpolated value goes through `q` (shlex.quote) here,
and nothing else in Mirador writes shell. The scripts follow design.md: bash, `set -euo
pipefail`, `${OLLAMA_BIN:-ollama}`, OLLAMA_HOST honoured, idempotent, a summary at the end
and a non-zero exit on any failure. They need bash 4+ and run nothing but `ollama` (plus
`curl` to probe embedding models, and `sha256sum` when present to check a Modelfile did not
change since the diagnosis).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mirador import __version__

CHAT_PROBE = "Reply with one short sentence: what can you help me with?"
EMBED_PROBE = "Mirador checks that this model returns an embedding."


def q(value: object) -> str:
    """The one shell-quoting function: any value becomes one literal word."""
    return shlex.quote(str(value))


def script_relative(path: Path, script_dir: Path) -> str:
    """A shell expression for `path`, relative to the script's own folder when possible."""
    try:
        rel = os.path.relpath(path.resolve(), script_dir.resolve())
    except ValueError:
        return q(path.resolve())
    if rel.split(os.sep)[:3] == [os.pardir] * 3:
        return q(path.resolve())  # far apart: an absolute path reads better
    return f'"$SCRIPT_DIR"/{q(rel)}'


def _comment(text: str) -> str:
    return "\n".join("# " + " ".join(line.split()) for line in text.splitlines())


# NOTE: the prelude is plain bash with no generated values in it; values only appear as
# quoted arguments of the step calls that follow it.
PRELUDE = r'''set -euo pipefail
if [ -z "${BASH_VERSINFO:-}" ] || [ "${BASH_VERSINFO[0]}" -lt 4 ]; then
  echo "this script needs bash 4 or newer" >&2; exit 2
fi

OLLAMA="${OLLAMA_BIN:-ollama}"
case "${BASH_SOURCE[0]}" in */*) SCRIPT_DIR="${BASH_SOURCE[0]%/*}" ;; *) SCRIPT_DIR=. ;; esac
printf -v STAMP '%(%Y%m%d-%H%M%S)T' -1
DRY_RUN=0
KEEP_GOING=0
ALL=0
DONE=()
SKIPPED=()
FAILED=()
NOTES=()
declare -A FAILED_SET=()

say() { printf '%s\n' "$*" >&2; }

# Print a command, then run it unless --dry-run.
run() {
  printf '+' >&2; printf ' %q' "$@" >&2; printf '\n' >&2
  if [ "$DRY_RUN" = 1 ]; then return 0; fi
  "$@"
}

now_ms() {
  local t="${EPOCHREALTIME:-}"
  if [ -n "$t" ]; then t="${t/[.,]/}"; printf '%s' "$((10#$t / 1000))"
  else printf '%s' "$((SECONDS * 1000))"; fi
}

# The server URL for curl, from OLLAMA_HOST as Ollama reads it (common forms).
api_base() {
  local h="${OLLAMA_HOST:-}" scheme=http port=11434 hostport path=""
  h="${h#"${h%%[![:space:]]*}"}"; h="${h%"${h##*[![:space:]]}"}"
  h="${h#[\"\']}"; h="${h%[\"\']}"
  case "$h" in
    http://*) h="${h#http://}"; port=80 ;;
    https://*) h="${h#https://}"; scheme=https; port=443 ;;
  esac
  hostport="${h%%/*}"
  if [ "$hostport" != "$h" ]; then path="/${h#*/}"; fi
  case "$hostport" in
    "") hostport="127.0.0.1:$port" ;;
    \[*\]:*) ;;
    \[*\]) hostport="$hostport:$port" ;;
    *:*:*) hostport="[$hostport]:$port" ;;
    :*) hostport="127.0.0.1$hostport" ;;
    *:*) ;;
    *) hostport="$hostport:$port" ;;
  esac
  case "$hostport" in 0.0.0.0:*) hostport="127.0.0.1:${hostport#*:}" ;; "[::]:"*) hostport="[::1]:${hostport#*]:}" ;; esac
  printf '%s://%s%s' "$scheme" "$hostport" "${path%/}"
}

# The 12-character ID `ollama list` shows for a model, or nothing when it is absent.
current_id() {
  local want="${1,,}" name id rest
  case "$want" in *:*) ;; *) want="$want:latest" ;; esac
  while read -r name id rest; do
    if [ "${name,,}" = "$want" ]; then printf '%s' "$id"; return 0; fi
  done < <("$OLLAMA" list 2>/dev/null || true)
  return 0
}

# Does the model answer? Chat models get a short completion, embedding models /api/embed.
probe_model() {
  local name="$1" kind="$2" body="$3" out
  if [ "$kind" = embedding ] && command -v curl >/dev/null 2>&1; then
    out="$(curl -fsS --max-time 300 -H 'Content-Type: application/json' -d "$body" "$(api_base)/api/embed" 2>&1)" || { PROBE_ERROR="$out"; return 1; }
    case "$out" in *'"embeddings":[['*) return 0 ;; esac
    PROBE_ERROR="no embedding in the reply: ${out:0:200}"; return 1
  fi
  if [ "$kind" = embedding ]; then
    out="$("$OLLAMA" run "$name" "$EMBED_PROMPT" 2>&1)" || { PROBE_ERROR="$out"; return 1; }
  else
    out="$("$OLLAMA" run "$name" "$CHAT_PROMPT" 2>&1)" || { PROBE_ERROR="$out"; return 1; }
  fi
  if [ -z "${out//[[:space:]]/}" ]; then PROBE_ERROR="empty answer"; return 1; fi
  return 0
}

fail() {
  FAILED+=("$1: $2"); FAILED_SET["$1"]=1
  say "FAILED  $1: $2"
  if [ "$KEEP_GOING" != 1 ]; then summary; exit 1; fi
}

summary() {
  local item
  say ""
  say "Summary: ${#DONE[@]} done, ${#SKIPPED[@]} skipped, ${#FAILED[@]} failed$([ "$DRY_RUN" = 1 ] && printf ' (dry run: nothing was changed)')"
  for item in "${DONE[@]}"; do say "  done     $item"; done
  for item in "${SKIPPED[@]}"; do say "  skipped  $item"; done
  for item in "${FAILED[@]}"; do say "  FAILED   $item"; done
  for item in "${NOTES[@]}"; do say "  note     $item"; done
}
'''

OPTIONS = r'''while [ $# -gt 0 ]; do
  case "$1" in
    --all) ALL=1 ;;
    --dry-run) DRY_RUN=1 ;;
    --keep-going) KEEP_GOING=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
'''


def _header(title: str, tool: str, host: str, description: str, usage: str) -> str:
    return (f"#!/usr/bin/env bash\n# {title}\n"
            f"{_comment(f'Generated by Mirador {__version__} ({tool}) for {host}.')}\n"
            f"{_comment(description)}\n"
            "# Honours OLLAMA_HOST; runs ${OLLAMA_BIN:-ollama}. Review it, then run it.\n\n"
            f"usage() {{\n  cat <<'USAGE'\n{usage.rstrip()}\nUSAGE\n}}\n\n"
            f"CHAT_PROMPT={q(CHAT_PROBE)}\nEMBED_PROMPT={q(EMBED_PROBE)}\n")


def embed_body(name: str) -> str:
    return json.dumps({"model": name, "input": EMBED_PROBE})


@dataclass(frozen=True)
class BuildStep:
    """One model the build script may create, in build order."""

    name: str
    modelfile: Path
    sha256: str
    status: str  # needs_build or drifted
    scope: str  # "critical" (always built) or "all" (only with --all)
    kind: str  # "chat" or "embedding"
    fleet_bases: tuple[str, ...] = ()  # fleet models it is built FROM


@dataclass(frozen=True)
class PullStep:
    name: str
    scope: str


def build_script(*, host: str, script_dir: Path, pulls: Sequence[PullStep],
                 steps: Sequence[BuildStep], state_file: str = ".mirador_build_state") -> str:
    usage = """Usage: build_critical_models.sh [--all] [--dry-run] [--keep-going] [-h|--help]

Pulls missing base models, then builds (ollama create) the critical models that are not
built or have drifted from their Modelfiles, in dependency order. A drifted model is first
copied to NAME-backup-<timestamp> (ollama cp: no extra disk) so it can be rolled back.
Each built model must answer a probe. Running it twice does nothing the second time.

  --all         also build the non-critical models that need it
  --dry-run     print what it would do, change nothing
  --keep-going  continue past a failure (the exit code is still non-zero)"""
    out = [_header("Build the models the diagnosis found missing or drifted.",
                   "mirador_model_diagnostic.py", host,
                   f"{len(steps)} model(s) in build order, {len(pulls)} base(s) to pull.",
                   usage), PRELUDE, OPTIONS]
    out.append(f'STATE_FILE="${{MIRADOR_STATE_FILE:-$SCRIPT_DIR/{state_file}}}"\n')
    out.append(r'''
in_scope() { [ "$1" = critical ] || [ "$ALL" = 1 ]; }

# Was this exact Modelfile already built into the model that is on the server now?
already_built() {
  local sha="$1" name="$2" id="$3" s n i
  [ -n "$id" ] && [ -f "$STATE_FILE" ] || return 1
  while IFS=$'\t' read -r s n i; do
    if [ "$s" = "$sha" ] && [ "${n,,}" = "${name,,}" ] && [ "$i" = "$id" ]; then return 0; fi
  done < "$STATE_FILE"
  return 1
}

pull_base() {
  local name="$1" scope="$2"
  in_scope "$scope" || return 0
  if [ -n "$(current_id "$name")" ]; then SKIPPED+=("$name (base already present)"); return 0; fi
  if run "$OLLAMA" pull "$name"; then DONE+=("pulled $name"); else fail "$name" "pull failed"; fi
}

build_model() {
  local name="$1" file="$2" sha="$3" status="$4" scope="$5" kind="$6" body="$7"
  shift 7
  in_scope "$scope" || return 0
  local base
  for base in "$@"; do
    if [ -n "${FAILED_SET[$base]:-}" ]; then fail "$name" "its base $base failed"; return 0; fi
  done
  if [ ! -f "$file" ]; then fail "$name" "Modelfile not found: $file"; return 0; fi
  if command -v sha256sum >/dev/null 2>&1; then
    local now; now="$(sha256sum < "$file")"; now="${now%% *}"
    if [ "$now" != "$sha" ]; then
      fail "$name" "$file changed since the diagnosis; run mirador_model_diagnostic.py again"
      return 0
    fi
  fi
  local id; id="$(current_id "$name")"
  if already_built "$sha" "$name" "$id"; then
    SKIPPED+=("$name (already built from this Modelfile)"); return 0
  fi
  if [ "$status" = drifted ] && [ -n "$id" ]; then
    local model="${name%:*}" tag="latest"
    case "$name" in *:*) tag="${name##*:}" ;; esac
    local backup="$model-backup-$STAMP:$tag"
    if ! run "$OLLAMA" cp "$name" "$backup"; then fail "$name" "backup copy failed"; return 0; fi
    NOTES+=("roll back $name with: $OLLAMA cp $backup $name")
  fi
  if ! run "$OLLAMA" create "$name" -f "$file"; then fail "$name" "ollama create failed"; return 0; fi
  if [ "$DRY_RUN" = 1 ]; then DONE+=("$name (dry run)"); return 0; fi
  PROBE_ERROR=""
  if ! probe_model "$name" "$kind" "$body"; then
    fail "$name" "built, but it does not answer: ${PROBE_ERROR:0:300}"; return 0
  fi
  id="$(current_id "$name")"
  if [ -n "$id" ]; then printf '%s\t%s\t%s\n' "$sha" "$name" "$id" >> "$STATE_FILE"; fi
  DONE+=("$name ($status, answers)")
}

''')
    out.append("# --- the plan ------------------------------------------------------------\n")
    out += [f"pull_base {q(p.name)} {q(p.scope)}\n" for p in pulls]
    for s in steps:
        bases = "".join(f" {q(b)}" for b in s.fleet_bases)
        out.append(f"build_model {q(s.name)} {script_relative(s.modelfile, script_dir)} "
                   f"{q(s.sha256)} {q(s.status)} {q(s.scope)} {q(s.kind)} "
                   f"{q(embed_body(s.name))}{bases}\n")
    out.append('\nsummary\n[ "${#FAILED[@]}" -eq 0 ]\n')
    return "".join(out)


@dataclass(frozen=True)
class ValidateStep:
    name: str
    kind: str


def validate_script(*, host: str, steps: Sequence[ValidateStep]) -> str:
    usage = """Usage: validate_critical_models.sh [-h|--help]

Checks each critical model is present and answers a query suited to it (a short
completion for chat models, an /api/embed call for embedding models), printing PASS or
FAIL per model with the time taken. Exits non-zero when any model fails."""
    out = [_header("Validate that every critical model is present and answers.",
                   "mirador_model_diagnostic.py", host,
                   f"{len(steps)} critical model(s).", usage), PRELUDE, OPTIONS]
    out.append(r'''
validate() {
  local name="$1" kind="$2" body="$3" t0 ms
  t0="$(now_ms)"
  if [ -z "$(current_id "$name")" ]; then
    printf 'FAIL  %-45s %6s ms  not on the server\n' "$name" "$(( $(now_ms) - t0 ))"
    FAILED+=("$name: not on the server"); return 0
  fi
  PROBE_ERROR=""
  if probe_model "$name" "$kind" "$body"; then
    ms="$(( $(now_ms) - t0 ))"
    printf 'PASS  %-45s %6s ms  %s\n' "$name" "$ms" "$kind"
    DONE+=("$name ($kind, $ms ms)")
  else
    ms="$(( $(now_ms) - t0 ))"
    printf 'FAIL  %-45s %6s ms  %s\n' "$name" "$ms" "${PROBE_ERROR:0:200}"
    FAILED+=("$name: ${PROBE_ERROR:0:200}")
  fi
}

''')
    out += [f"validate {q(s.name)} {q(s.kind)} {q(embed_body(s.name))}\n" for s in steps]
    out.append('\nsummary\n[ "${#FAILED[@]}" -eq 0 ]\n')
    return "".join(out)
