#!/usr/bin/env bash
# kcat (Debian kcat, librdkafka) against a Kafka-protocol server, defaults.
# usage: kcat.sh ADDR setup|resume|member NAME
# kcat has no admin command: the topic is created by producing to it, which
# needs a server that auto-creates topics (streamserve -auto-create -partitions 3).
set -euo pipefail
addr=$1 phase=$2 name=$3
topic=compat-$name group=compat-$name-group

keyed() { # first n: key:value lines, as matrix_test.go's records
	for ((j = $1; j < $1 + $2; j++)); do echo "$name-k$((j % 10)):$name-v$j"; done
}
expect() { # step want got
	if [ "$(sort <<<"$2")" != "$(sort <<<"$3")" ]; then
		echo "$1: want $(sort <<<"$2" | tr '\n' ' '), got $(sort <<<"$3" | tr '\n' ' ')" >&2
		exit 1
	fi
	echo "ok $1"
}

case $phase in
setup)
	first=$(keyed 0 30)
	timeout 60 kcat -b "$addr" -P -t "$topic" -K: <<<"$first"
	got=$(timeout 60 kcat -b "$addr" -C -t "$topic" -o beginning -e -c 30 -f '%k:%s\n')
	expect "consume from earliest" "$first" "$got"
	# A balanced consumer: commits on close (enable.auto.commit).
	got=$(timeout 60 kcat -b "$addr" -G "$group" -X auto.offset.reset=earliest -c 30 -f '%k:%s\n' "$topic")
	expect "consume in a group" "$first" "$got"
	;;
resume)
	second=$(keyed 30 10)
	timeout 60 kcat -b "$addr" -P -t "$topic" -K: <<<"$second"
	got=$(timeout 60 kcat -b "$addr" -G "$group" -c 10 -f '%k:%s\n' "$topic")
	expect "resume after a restart" "$second" "$got"
	;;
member)
	exec kcat -b "$addr" -G "compat-mixed-$name-group" -X auto.offset.reset=earliest -u -f 'record %p %k\n' "compat-mixed-$name"
	;;
*)
	echo "usage: kcat.sh ADDR setup|resume|member NAME" >&2
	exit 2
	;;
esac
