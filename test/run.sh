#!/bin/sh
# `make run`: the gateway on CONF plus the two fake backends the default config routes to.
conf=${1:-conf/modelgate.yaml}
build/fakeai --port 9101 --name fake-a &
a=$!
build/fakeai --port 9102 --name fake-b &
b=$!
trap 'kill $a $b 2>/dev/null' EXIT INT TERM
# Each fake answers under its own name before the gateway starts: on a port another process
# holds, the README's tour (fail-over by x-fake-status-for) would talk to a stranger.
for f in "$a 9101 fake-a" "$b 9102 fake-b"; do
    set -- $f
    n=0
    until curl -s -o /dev/null -D - -d '{"model":"probe"}' \
            "http://127.0.0.1:$2/v1/chat/completions" 2>/dev/null |
            grep -qi "^x-fake-backend: $3"; do
        if ! kill -0 "$1" 2>/dev/null || [ $n -ge 100 ]; then
            echo "modelgate: the fake backend $3 did not start on 127.0.0.1:$2" >&2
            exit 1
        fi
        n=$((n + 1))
        sleep 0.1
    done
done
echo "modelgate: fake backends on 127.0.0.1:9101 and :9102; try:"
echo "  curl -s localhost:8080/v1/chat/completions -d '{\"model\":\"demo-chat\",\"messages\":[]}'"
build/modelgate -c "$conf"
