#!/usr/bin/env python3
"""confluent-kafka (Debian python3-confluent-kafka, librdkafka) against a
Kafka-protocol server, defaults.

usage: confluent_kafka_client.py ADDR setup|resume|member NAME
"""
import sys
import time
import uuid
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from common import expect, keyed, member_out, parse

addr, phase, name = parse(sys.argv)
topic, group = "compat-" + name, "compat-" + name + "-group"


def produce(recs):
    p = Producer({"bootstrap.servers": addr})
    for k, v in recs:
        p.produce(topic, key=k.encode(), value=v.encode())
    if p.flush(60) != 0:
        sys.exit("produce: records left unsent")


def read(c, n, step):
    got, deadline = [], time.time() + 60
    while len(got) < n and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            sys.exit("%s: %s" % (step, m.error()))
        got.append((m.key().decode(), m.value().decode()))
    return got


def group_consumer(g, reset="latest"):
    return Consumer({"bootstrap.servers": addr, "group.id": g, "auto.offset.reset": reset,
                     "enable.auto.commit": False})


if phase == "setup":
    adm = AdminClient({"bootstrap.servers": addr})  # kept: a freed client cancels its futures
    fs = adm.create_topics(
        [NewTopic(topic, num_partitions=3, replication_factor=1)])
    fs[topic].result(60)
    first = keyed(name, 0, 30)
    produce(first)
    # Outside a group: a group id of its own, never committed.
    c = group_consumer("compat-" + str(uuid.uuid4()), "earliest")
    c.subscribe([topic])
    expect("consume from earliest", first, read(c, 30, "consume from earliest"))
    c.close()
    c = group_consumer(group, "earliest")
    c.subscribe([topic])
    expect("consume in a group", first, read(c, 30, "consume in a group"))
    c.commit(asynchronous=False)
    c.close()
elif phase == "resume":
    second = keyed(name, 30, 10)
    produce(second)
    c = group_consumer(group)
    c.subscribe([topic])
    expect("resume after a restart", second, read(c, 10, "resume"))
    c.commit(asynchronous=False)
    c.close()
elif phase == "member":
    c = group_consumer("compat-mixed-" + name + "-group", "earliest")
    c.subscribe(["compat-mixed-" + name])
    while True:
        m = c.poll(1.0)
        if m is not None and not m.error():
            member_out(m.partition(), m.key().decode())
