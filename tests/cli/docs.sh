#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The man pages and the bash completion follow the binary: every command
# `pairlink --help` lists, every subcommand its --help lists, and every
# option of each --help text are in man/pairlink.1 (the relay's in
# man/pairlink-relay.8) and are completed by contrib/bash-completion/pairlink.
# A new command or option fails this test until it is documented there.
# The pages must also render without groff warnings.
set -uo pipefail
CLI=${PL_CLI:-build/pairlink}
S=${PL_SOURCE_DIR:-.}
MAN1="$S/man/pairlink.1" MAN8="$S/man/pairlink-relay.8" COMP="$S/contrib/bash-completion/pairlink"
passed=0 fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# shellcheck source=/dev/null
source "$COMP" || { echo "FAIL: $COMP does not load"; exit 1; }
complete_words() { # WORD... (the last one is being completed): the candidates, one a line
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMPREPLY=()
    _pairlink 2>/dev/null
    printf '%s\n' "${COMPREPLY[@]}"
}
roff() { sed 's/-/\\-/g' <<<"$1"; } # how an option is written in the pages
# Subcommands a --help text lists: "  name   summary" lines, options excluded.
subcommands_of() { sed -n 's/^  \([a-z][a-z0-9-]*\)  .*/\1/p' <<<"$1"; }
options_of() { grep -o -- '--[a-z][a-z0-9-]*' <<<"$1" | sort -u; }

# check KEY HELP-TEXT MANPAGE: the options of one command or subcommand.
check() {
    local key="$1" help="$2" page="$3" opt n=0
    read -ra words <<<"pairlink $key"
    local completed
    completed=$(complete_words "${words[@]}" --)
    for opt in $(options_of "$help"); do
        n=$((n + 1))
        grep -qxF -- "$opt" <<<"$completed" || fail "'pairlink $key $opt' is not completed ($COMP)"
        grep -qF -- "$(roff "$opt")" "$page" || fail "'pairlink $key $opt' is not in $page"
    done
    passed=$((passed + 1))
}

top=$("$CLI" --help)
commands=$(sed -n '/^commands:/,/^$/p' <<<"$top" | subcommands_of "$(cat)")
[ -n "$commands" ] || { echo "FAIL: no commands in 'pairlink --help'"; exit 1; }
completed_top=$(complete_words pairlink "")
for opt in --help --version; do
    grep -qxF -- "$opt" <<<"$completed_top" || fail "'pairlink $opt' is not completed"
done
grep -qF -- '\-\-version' "$MAN1" || fail "--version is not in $MAN1"
for cmd in $commands; do
    grep -qxF "$cmd" <<<"$completed_top" || fail "command '$cmd' is not completed ($COMP)"
    grep -qF ".SS \"pairlink $(roff "$cmd")" "$MAN1" || fail "command '$cmd' has no subsection in $MAN1"
    page=$MAN1
    [ "$cmd" = relay ] && page=$MAN8
    help=$("$CLI" "$cmd" --help)
    subs=$(subcommands_of "$help")
    if [ -z "$subs" ]; then
        check "$cmd" "$help" "$page"
        continue
    fi
    completed_subs=$(complete_words pairlink "$cmd" "")
    for sub in $subs; do
        grep -qxF "$sub" <<<"$completed_subs" || fail "'pairlink $cmd $sub' is not completed ($COMP)"
        grep -qF "pairlink $(roff "$cmd") $(roff "$sub")" "$page" ||
            fail "'pairlink $cmd $sub' is not in $page"
        check "$cmd $sub" "$("$CLI" "$cmd" "$sub" --help)" "$page"
    done
done

# The pages render cleanly (groff is part of man-db's dependencies).
if command -v groff >/dev/null; then
    for page in "$MAN1" "$MAN8"; do
        warn=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
        [ -z "$warn" ] && passed=$((passed + 1)) || fail "$page: $warn"
    done
else
    echo "docs: groff not installed: the rendering check is skipped"
fi

# Every source file names its licence (LICENSE: Apache-2.0) in its first lines.
while IFS= read -r f; do
    head -n 3 "$f" | grep -q 'SPDX-License-Identifier: Apache-2.0' && passed=$((passed + 1)) ||
        fail "$f: no SPDX-License-Identifier line"
done < <(find "$S/src" "$S/include" "$S/tests" "$S/bench" "$S/fuzz" "$S/tools" "$S/scripts" "$S/interop" \
    "$S/examples" "$S/proto" -path '*/node_modules' -prune -o -path "$S/fuzz/corpus" -prune -o \
    -type f \( -name '*.c' -o -name '*.h' -o -name '*.cpp' -o -name '*.sh' -o -name '*.bash' \
    -o -name '*.mjs' -o -name '*.py' -o -name '*.proto' \) -print)

echo "docs: $passed passed, $fails failed"
[ $fails = 0 ]
