"""The local stack's moto server keeps DynamoDB's conditional writes atomic under concurrent requests.

Real DynamoDB checks a write's condition and applies it as one step; moto checks, then writes,
with no lock between, so two functions racing on one item's version both won and the second
overwrote the first (a past_due snapshot lost: grace counted from the second one, issue 8).
"""

from __future__ import annotations

import sys
import threading

import boto3
import pytest

from infra.local.moto_server import LocalMotoServer

pytestmark = pytest.mark.integration
WRITERS = 8
ROUNDS = 100


def test_local_moto_server_concurrent_conditional_puts_exactly_one_wins():
    # Given the local stack's moto server and a table, and threads switched as often as a loaded
    # machine may switch them (the race needs a switch between moto's check and its write)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    server = LocalMotoServer()
    server.start()
    try:
        host, port = server.get_host_and_port()
        kwargs = dict(endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
        setup = boto3.client("dynamodb", **kwargs)
        setup.create_table(TableName="race", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                           AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                           BillingMode="PAY_PER_REQUEST")
        clients = [boto3.client("dynamodb", **kwargs) for _ in range(WRITERS)]
        won: list[list[int]] = []
        for round_ in range(ROUNDS):
            barrier = threading.Barrier(WRITERS)
            winners: list[int] = []

            def write(n: int, round_: int = round_, barrier: threading.Barrier = barrier,
                      winners: list[int] = winners) -> None:
                barrier.wait()
                try:
                    clients[n].put_item(TableName="race", Item={"pk": {"S": f"item{round_}"}, "writer": {"N": str(n)}},
                                        ConditionExpression="attribute_not_exists(pk)")
                    winners.append(n)
                except clients[n].exceptions.ConditionalCheckFailedException:
                    pass

            # When writers put the same new item at the same moment, each only if it does not exist
            threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            won.append(winners)
        # Then in every round exactly one won, and the item is the winner's
        assert [len(w) for w in won] == [1] * ROUNDS
        for round_, winners in enumerate(won):
            item = setup.get_item(TableName="race", Key={"pk": {"S": f"item{round_}"}})["Item"]
            assert item["writer"]["N"] == str(winners[0])
    finally:
        server.stop()
        sys.setswitchinterval(interval)
