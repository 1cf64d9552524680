// Package compat is the listener's compatibility matrix: real Kafka clients
// that no one here wrote, each with its default settings, run the same steps
// against a served Broker. It holds only tests, in a module of its own so
// that the listener module does not depend on sarama and kafka-go.
//
// The Go clients (franz-go, IBM/sarama, segmentio/kafka-go) run in `go test`
// and so in `make test`. The other clients (kcat, kafka-python,
// confluent-kafka, kafkajs) are driven by scripts in scripts/, run by the
// tests behind the build tag compat_external, which `make compat` sets after
// installing the clients; there a missing client fails.
//
// Where the server comes from is decided in one place (target_test.go), by
// environment:
//
//	COMPAT_TARGET=listener  (default) our listener: listenertest for the Go
//	                        clients, the streamserve binary for the scripts
//	COMPAT_TARGET=kfake     franz-go's fake Kafka, to develop the suite
//	                        against a known-good server; steps that need the
//	                        in-process Broker say so and are skipped
//	COMPAT_ADDR=host:port   an already-running Kafka-protocol server (scripts
//	                        only; steps that restart it are skipped)
package compat
