#!/bin/sh
# The Debian control file of make deb: $1 the version, $2 the architecture, $3 the binary.
# Depends: the package of every library the binary links (its ELF NEEDED entries, found with
# dpkg -S, so a new library can never be forgotten), plus adduser (the postinst makes the
# modelgate user) and procps (the unit's ExecReload runs its /bin/kill, which a minimal
# Debian 12 lacks).
set -e
libs=""
for so in $(objdump -p "$3" | awk '/NEEDED/ {print $2}'); do
    pkg=$(dpkg -S "*/$so" 2>/dev/null | head -1 | cut -d: -f1)
    if [ -z "$pkg" ]; then
        echo "control.sh: no Debian package holds $so (linked by $3)" >&2
        exit 1
    fi
    libs="$libs $pkg"
done
depends=$(printf '%s\n' adduser procps $libs | sort -u | paste -sd, - | sed 's/,/, /g')
cat <<CONTROL
Package: modelgate
Version: $1
Architecture: $2
Maintainer: modelgate developers <dev@modelgate.invalid>
Section: net
Priority: optional
Depends: $depends
Description: OpenAI-compatible LLM gateway
 One binary and one YAML file in front of OpenAI, Anthropic, Azure, Bedrock and
 OpenAI-compatible servers: routing by model, fail-over, client keys and rate
 limits, and every client API (chat completions, Responses, Anthropic Messages)
 on every backend.
CONTROL
