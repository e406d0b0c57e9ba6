#!/bin/sh
# Runs the real coding agents through the gateway against fakeai, offline (not part of make check):
#   Claude Code (`claude -p`, Anthropic Messages) and Codex CLI (`codex exec`, Responses API)
#   on an anthropic, a bedrock and an openai route. Each run must print fakeai's answer
#   ("tok0 tok1 tok2"). Every client request and gateway answer is captured by a logging proxy
#   between the agent and the gateway, and every upstream request by one between the gateway and
#   fakeai, in $OUT/<agent>-<model>/{client,upstream}/NNN.{txt,req}.
# Usage: test/agents/run.sh            (after `make -j2 BUILD=build/dev all`)
# Env: BUILD (build/dev), OUT (/tmp/agents/out), AGENTS (/tmp/agents: npm prefix, installed on
#      first use from the npm registry), PORT (base port, default 19530: uses PORT..PORT+3).
# Exit status: the number of failed runs.
set -u
BUILD=${BUILD:-build/dev}
OUT=${OUT:-/tmp/agents/out}
AGENTS=${AGENTS:-/tmp/agents}
PORT=${PORT:-19530}
GW=$PORT; FAKE=$((PORT + 1)); CTAP=$((PORT + 2)); UTAP=$((PORT + 3))
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

for b in modelgate fakeai; do
    [ -x "$ROOT/$BUILD/$b" ] || { echo "no $BUILD/$b: run make -j2 BUILD=$BUILD all" >&2; exit 100; }
done
if [ ! -x "$AGENTS/node_modules/.bin/claude" ] || [ ! -x "$AGENTS/node_modules/.bin/codex" ]; then
    npm install --prefix "$AGENTS" @anthropic-ai/claude-code @openai/codex >&2 || exit 100
fi
rm -rf "$OUT"
mkdir -p "$OUT/home" "$OUT/codex" "$OUT/work"

# A logging reverse proxy: LISTEN -> TARGET, each exchange in DIR/NNN.txt, the request body in NNN.req.
cat > "$OUT/tap.mjs" <<'EOF'
import http from 'node:http'; import fs from 'node:fs';
const [listen, target] = [+process.argv[2], +process.argv[3]];
let n = 0;
http.createServer((req, res) => {
  const dir = fs.readFileSync(process.argv[4], 'utf8').trim();
  const id = String(++n).padStart(3, '0'); const chunks = [];
  req.on('data', c => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    fs.mkdirSync(dir, {recursive: true});
    fs.writeFileSync(`${dir}/${id}.req`, body);
    let log = `>>> ${req.method} ${req.url}\n${JSON.stringify(req.headers, null, 1)}\n${body}\n`;
    const up = http.request({host: '127.0.0.1', port: target, method: req.method, path: req.url,
                             headers: req.headers}, ur => {
      log += `<<< ${ur.statusCode}\n${JSON.stringify(ur.headers, null, 1)}\n`;
      res.writeHead(ur.statusCode, ur.headers);
      ur.on('data', c => { log += c; res.write(c); });
      ur.on('end', () => { res.end(); fs.writeFileSync(`${dir}/${id}.txt`, log); });
    });
    up.on('error', e => { fs.writeFileSync(`${dir}/${id}.txt`, log + `!!! ${e}\n`);
                          res.writeHead(502); res.end(); });
    up.end(body);
  });
}).listen(listen, '127.0.0.1');
EOF

# Backends reach fakeai through the upstream tap. claude-3-br / claude-3-oa: the same routes under
# a name Claude Code treats as an older model (no role "system" messages, see below).
cat > "$OUT/gw.yaml" <<EOF
listen: 127.0.0.1:$GW
workers: 2
timeouts: {connect: 2s, first_byte: 30s, idle: 30s, total: 120s}
log_level: debug
access_log: $OUT/access.log
health: {failures: 0}
backends:
  - {name: claude, schema: anthropic, url: 'http://127.0.0.1:$UTAP', api_key: sk-ant-b}
  - {name: br, schema: bedrock, region: eu-west-1, url: 'http://127.0.0.1:$UTAP', aws_access_key_id: FAKEAKID, aws_secret_access_key: fake-secret, aws_session_token: tok-1}
  - {name: oa, url: 'http://127.0.0.1:$UTAP/v1', api_key: sk-oa}
rules:
  - {models: [claude-x], backends: [{backend: claude}]}
  - {models: [br-x, claude-3-br], backends: [{backend: br, model: 'anthropic.claude-3-haiku-20240307-v1:0'}]}
  - {models: [oa-x, claude-3-oa], backends: [{backend: oa}]}
EOF
cat > "$OUT/codex/config.toml" <<EOF
model = "oa-x"
model_provider = "mg"
check_for_update_on_startup = false

[model_providers.mg]
name = "modelgate"
base_url = "http://127.0.0.1:$CTAP/v1"
env_key = "MG_KEY"
wire_api = "responses"
EOF

"$ROOT/$BUILD/fakeai" --port "$FAKE" --name fake > "$OUT/fakeai.log" 2>&1 &
fpid=$!
"$ROOT/$BUILD/modelgate" -c "$OUT/gw.yaml" > "$OUT/gateway.log" 2>&1 &
gpid=$!
echo "$OUT/none" > "$OUT/ctap.dir"; echo "$OUT/none" > "$OUT/utap.dir"
node "$OUT/tap.mjs" "$CTAP" "$GW" "$OUT/ctap.dir" > "$OUT/ctap.log" 2>&1 &
cpid=$!
node "$OUT/tap.mjs" "$UTAP" "$FAKE" "$OUT/utap.dir" > "$OUT/utap.log" 2>&1 &
upid=$!
trap 'kill $fpid $gpid $cpid $upid 2>/dev/null' EXIT INT TERM
sleep 1

fails=0
check() {   # NAME OUTFILE RC
    if [ "$3" = 0 ] && grep -q 'tok0 tok1 tok2' "$2"; then
        echo "PASS $1"
    else
        echo "FAIL $1 (exit $3):"; sed 's/^/    /' "$2" | tail -5; fails=$((fails + 1))
    fi
}
run_claude() {
    d=$OUT/claude-$1; echo "$d/client" > "$OUT/ctap.dir"; echo "$d/upstream" > "$OUT/utap.dir"
    mkdir -p "$d"
    (cd "$OUT/work" && env HOME="$OUT/home" ANTHROPIC_BASE_URL="http://127.0.0.1:$CTAP" \
        ANTHROPIC_API_KEY=anything ANTHROPIC_MODEL="$1" ANTHROPIC_SMALL_FAST_MODEL="$1" \
        ANTHROPIC_DEFAULT_HAIKU_MODEL="$1" CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
        DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1 DISABLE_ERROR_REPORTING=1 \
        timeout 120 "$AGENTS/node_modules/.bin/claude" -p "say hi" > "$d/output" 2>&1)
    check "claude -p on $1" "$d/output" $?
}
run_codex() {
    d=$OUT/codex-$1; echo "$d/client" > "$OUT/ctap.dir"; echo "$d/upstream" > "$OUT/utap.dir"
    mkdir -p "$d"
    (cd "$OUT/work" && env HOME="$OUT/home" CODEX_HOME="$OUT/codex" MG_KEY=anything \
        timeout 120 "$AGENTS/node_modules/.bin/codex" exec --skip-git-repo-check -m "$1" "say hi" \
        < /dev/null > "$d/output" 2>&1)
    check "codex exec on $1" "$d/output" $?
}

# Claude Code: claude-x is served natively; br-x and oa-x go through the chat hub. For a model
# name it does not know, Claude Code 2.1.x sends a {"role":"system"} entry inside "messages"
# (beta mid-conversation-system-2026-04-07), which the hub's Messages translator refuses.
for m in claude-x br-x oa-x claude-3-br claude-3-oa; do run_claude "$m"; done
for m in oa-x claude-x br-x; do run_codex "$m"; done
echo "captures and logs: $OUT"
exit $fails
