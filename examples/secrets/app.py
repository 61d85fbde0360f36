"""Reads a secret from the environment, as code written for any platform does."""

import os


def pay(event, context):
    key = os.environ["PAYMENT_API_KEY"]
    # Printed on purpose: the local runtime masks the exact value in captured logs.
    print("charging with key " + key, flush=True)
    return {"status": 200, "body": {"key_length": len(key), "mode": os.environ["MODE"]}}


def other(event, context):
    # Least privilege: a function that does not reference the secret does not get it.
    return {"status": 200, "body": {"sees_key": "PAYMENT_API_KEY" in os.environ}}
