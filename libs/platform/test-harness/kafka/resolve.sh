#!/usr/bin/env bash
# Pre-fetches the Kafka broker's jars from Maven Central into ~/.m2 and writes the classpath
# cache that startKafka() reads (same file name scheme as src/kafka/classpath.ts), so tests
# never run Maven. Usage: libs/platform/test-harness/kafka/resolve.sh [kafka-version]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pom="$here/pom.xml"
version=${1:-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")}
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/custodian/test-harness"
pom_hash=$(sha256sum "$pom" | cut -c1-12)
cache_file="$cache_dir/kafka_2.13-$version-$pom_hash.classpath"
mvn=${CUSTODIAN_MVN:-mvn}

mkdir -p "$cache_dir"
tmp="$cache_file.$$.tmp"
trap 'rm -f "$tmp"' EXIT

started=$(date +%s%N)
"$mvn" -q -B -Dstyle.color=never -f "$pom" "-Dkafka.version=$version" \
  dependency:build-classpath "-Dmdep.outputFile=$tmp" -Dmdep.includeScope=runtime
mv "$tmp" "$cache_file"
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))

jars=$(tr ':' '\n' < "$cache_file" | grep -c '\.jar$')
size=$(tr ':' '\n' < "$cache_file" | xargs du -cb 2>/dev/null | tail -1 | cut -f1)
echo "kafka_2.13 $version: $jars jars ($(( size / 1024 / 1024 )) MB) resolved in ${elapsed_ms} ms -> $cache_file"
