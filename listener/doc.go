// Package listener serves an embedded stream.Broker over Kafka's wire
// protocol, so that any Kafka client or tool (franz-go, sarama, kafka-go,
// librdkafka and kcat, kafka-python, kafkajs, the Java client) reaches the
// same topics, offsets and consumer groups as the code in the process.
//
// It lives in its own module so that users of the engine who never open a
// port pull in nothing of Kafka's protocol. Every request and response is
// encoded by franz-go's kmsg; each API's handler is in a file named after
// it.
//
// The server is one broker (node 0) that leads every partition. Requests
// on a connection are handled one at a time, in order, as Kafka's broker
// handles them, by a goroutine that reads them, while another writes the
// responses.
//
// # Produce and durability
//
// A Produce request's batches go through the broker's accept path
// (stream.Broker.AppendBatches): validated, recompressed if the topic says
// so, appended as sent. acks=0 gets no response at all. acks=1 and acks=-1
// (all) are the same here, one broker being every replica: both are
// answered once the append returns, which is when the topic's SyncPolicy
// says it is done: under SyncAlways once the batch is fsynced (Kafka's
// acks=all with flush.messages=1), under SyncInterval and SyncNever once
// it is in the page cache, readable by every consumer (Kafka's default,
// acks=all without fsync). Idempotent producers (franz-go's and the Java
// client's default) get producer IDs from InitProducerId and their retries
// are recognised per partition, across restarts; transactional
// producers are below.
//
// # Fetch
//
// Fetch answers with whole record batches read from the mapped segments,
// never decoded or re-encoded; it long-polls on the partitions' appends.
// Fetch sessions are not kept (every answer says "no session", which
// KIP-227 allows). A read_committed fetch stops at the last stable offset
// and lists the aborted transactions among its batches, which the client
// skips, as it skips the COMMIT and ABORT markers.
//
// # Transactions
//
// Transactional producers (franz-go's GroupTransactSession, librdkafka's
// and the Java client's transactional.id) are served by the broker's one
// transaction coordinator, the one in-process TxProducer and TxSession
// use: InitProducerId with a transactional ID fences earlier instances
// (stream.Broker.InitTransactions), AddPartitionsToTxn and AddOffsetsToTxn
// open the transaction, transactional Produce batches go only to added
// partitions, TxnOffsetCommit stages a group's offsets with it (a v3+
// member checked by generation, KIP-447), EndTxn commits or aborts, and
// DescribeTransactions and ListTransactions report the coordinator's
// state. It is Kafka's transaction.version 1 flow; the README lists where
// it differs from Kafka's. A fenced producer gets PRODUCER_FENCED, or
// INVALID_PRODUCER_EPOCH in the versions before that code existed.
//
// # Topics
//
// Topics are managed with Kafka's admin APIs (CreateTopics, CreatePartitions,
// DescribeConfigs, AlterConfigs, IncrementalAlterConfigs, DeleteRecords,
// DeleteTopics) by Kafka's topic config names, mapped onto
// stream.TopicConfig in one table (configs.go); a value a TopicConfig
// cannot express is refused with INVALID_CONFIG and a message saying what
// can be. The broker being the only replica, replication factors are 1.
// Each topic has a topic ID derived from its name and creation time:
// stable across restarts, new when the topic is re-created.
//
// # Security
//
// A listener opens a port onto the broker's data, so:
//
//   - ListenAndServe binds DefaultAddr (127.0.0.1:9092) unless told
//     otherwise. Without Options.SASL the listener trusts every
//     connection: any client may read, write, create and delete anything.
//     Keep such a listener on the loopback interface.
//   - Options.TLS serves TLS (crypto/tls) on every connection.
//   - Options.SASL requires authentication with PLAIN, SCRAM-SHA-256 or
//     SCRAM-SHA-512 (SCRAM by github.com/xdg-go/scram; the server stores
//     only salted keys, NewSCRAMCredentials). SaslHandshake v1 is followed
//     by SaslAuthenticate requests (franz-go, librdkafka, Java, sarama);
//     v0 by bare size-prefixed tokens (kafka-python 2.0). Until a
//     connection has authenticated it may send only ApiVersions and the
//     SASL exchange: anything else closes it. A failed authentication is
//     answered SASL_AUTHENTICATION_FAILED, logged, and closes the
//     connection. Sessions do not expire (no re-authentication).
//   - With SASL, Options.ACLs allow users operations on topics, groups,
//     the cluster and transactional IDs (literal names, "*", or
//     prefixes); Describe is implied by Read, Write, Delete and Alter;
//     everything else is denied, logged, and answered with Kafka's
//     *_AUTHORIZATION_FAILED codes. Options.SuperUsers may do anything.
//
// # Bad input and limits
//
// A request over MaxFrameBytes, one that cannot be parsed (bad header,
// truncated body, unknown API key or version, except ApiVersions which is
// answered UNSUPPORTED_VERSION as KIP-511 asks), one that takes longer
// than ReadTimeout to arrive, a connection idle for IdleTimeout, a client
// not reading its responses for WriteTimeout, and a connection over
// MaxConnections: each closes that connection only, with a log line, and
// the server goes on serving the others. A panic in the request path
// closes its connection too. MaxInFlight bounds the responses queued per
// connection. FuzzRequest (make fuzz) feeds raw frames to the request
// path.
package listener
