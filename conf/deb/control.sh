#!/bin/sh
# The Debian control file of make deb: $1 the version, $2 the architecture.
# procps: the unit's ExecReload runs its /bin/kill, which a minimal Debian 12 lacks.
cat <<CONTROL
Package: modelgate
Version: $1
Architecture: $2
Maintainer: modelgate developers <dev@modelgate.invalid>
Section: net
Priority: optional
Depends: adduser, procps, libevent-2.1-7, libcurl4, libjansson4, libyaml-0-2, libssl3, libmimalloc2.0
Description: OpenAI-compatible LLM gateway
 One binary and one YAML file in front of OpenAI, Anthropic, Azure, Bedrock and
 OpenAI-compatible servers: routing by model, fail-over, client keys and rate
 limits, and every client API (chat completions, Responses, Anthropic Messages)
 on every backend.
CONTROL
