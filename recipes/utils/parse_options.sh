#!/usr/bin/env bash
# Usage: . recipes/utils/parse_options.sh   (after the script has set its variables)
# Kaldi-style options: every lower-case, non-exported variable set before this file is sourced
# is an option; `--foo-bar VALUE` (or `--foo-bar=VALUE`) sets foo_bar. An unknown option is an
# error; `--help` prints $help_message and every option with its current value. Positional
# arguments are left in "$@".

__option_names=""
for __v in $(compgen -v); do
  [[ $__v =~ ^[a-z][a-z0-9_]*$ && $__v != help_message ]] || continue
  [[ $(declare -p "$__v" 2>/dev/null) == "declare -x"* ]] && continue
  __option_names+=" $__v"
done

__positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      printf '%s\n\nOptions (current values):\n' "${help_message:-Usage: $0 [options]}"
      for __v in $__option_names; do printf '  --%-20s %s\n' "${__v//_/-}" "${!__v}"; done
      exit 0 ;;
    --*=*) __key=${1%%=*}; __value=${1#*=}; shift ;;
    --*)
      __key=$1
      if [ $# -lt 2 ]; then echo "$0: option $__key needs a value" >&2; exit 1; fi
      __value=$2; shift 2 ;;
    *) __positional+=("$1"); shift; continue ;;
  esac
  __v=${__key#--}; __v=${__v//-/_}
  if [[ " $__option_names " != *" $__v "* ]]; then
    echo "$0: unknown option $__key (see $0 --help)" >&2
    exit 1
  fi
  printf -v "$__v" '%s' "$__value"
done
set -- "${__positional[@]+"${__positional[@]}"}"
unset __option_names __positional __key __value __v
