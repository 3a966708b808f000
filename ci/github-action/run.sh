#!/usr/bin/env bash
# The action's command step: runs `imprint $IMPRINT_COMMAND $IMPRINT_ARGS`, writes digest/verdict/exit-code to
# $GITHUB_OUTPUT and a short Markdown verdict to $GITHUB_STEP_SUMMARY, and exits with imprint's status.
set -uo pipefail
imprint=${IMPRINT:-imprint}
out=${RUNNER_TEMP:-${TMPDIR:-/tmp}}/imprint-action-$$
mkdir -p "$out"
read -r -a args <<< "${IMPRINT_ARGS:-}"
output() { [ -n "${GITHUB_OUTPUT:-}" ] && printf '%s=%s\n' "$1" "$2" >> "$GITHUB_OUTPUT"; return 0; }
summary() { [ -n "${GITHUB_STEP_SUMMARY:-}" ] && printf '%s\n' "$@" >> "$GITHUB_STEP_SUMMARY"; return 0; }
json_field() { # json_field FILE PYTHON_EXPRESSION_OVER_d
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]) or "")' "$1" "$2" 2>/dev/null
}

case "${IMPRINT_COMMAND:-}" in
  fingerprint)
    "$imprint" fingerprint "${args[@]}" --digest-file "$out/digest"
    status=$?
    digest=$(cat "$out/digest" 2>/dev/null || true)
    output digest "$digest"
    [ "$status" = 2 ] && verdict=ERROR || verdict=OK
    summary "### imprint fingerprint: $verdict" "" "Build context digest: \`${digest:-none}\`"
    ;;
  stamp)
    "$imprint" stamp "${args[@]}" > "$out/stamp.out"
    status=$?
    cat "$out/stamp.out"
    image=$(tail -n 1 "$out/stamp.out")
    output image-digest "$image"
    case "$status" in 0) verdict=OK ;; 1) verdict=MISMATCH ;; *) verdict=ERROR ;; esac
    summary "### imprint stamp: $verdict" "" "Stamped image: \`${image:-none}\`"
    ;;
  verify)
    "$imprint" verify "${args[@]}" --format json -o "$out/verify.json"
    status=$?
    case "$status" in 0) verdict=VERIFIED ;; 1) verdict=$(json_field "$out/verify.json" 'd["verdict"]') ;; *) verdict=ERROR ;; esac
    [ -n "$verdict" ] || verdict=MISMATCH
    digest=$(json_field "$out/verify.json" 'd["target"]["digest"]')
    output digest "$digest"
    output report "$out/verify.json"
    echo "imprint verify: $verdict (target digest ${digest:-unknown}; report $out/verify.json)"
    summary "### imprint verify: $verdict" "" "Target digest: \`${digest:-unknown}\`"
    if [ "$status" = 1 ]; then
      json_field "$out/verify.json" '"\n".join("%s\t%s\t%s" % (f.get("class", ""), f.get("path", ""), f.get("message", "")) for f in d["findings"][:50])' \
        > "$out/findings.tsv" || true
      if [ -s "$out/findings.tsv" ]; then
        summary "" "| finding | path | what |" "| --- | --- | --- |"
        while IFS=$'\t' read -r class path message; do
          echo "  $class: $path: $message"
          summary "| $class | \`$path\` | $message |"
        done < "$out/findings.tsv"
      fi
    fi
    ;;
  *)
    echo "run.sh: error: command must be fingerprint, stamp or verify, not \"${IMPRINT_COMMAND:-}\"" >&2
    output exit-code 2
    exit 2
    ;;
esac
output verdict "$verdict"
output exit-code "$status"
exit "$status"
