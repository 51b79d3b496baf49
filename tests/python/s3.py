"""Test helper: fill and read a bucket on a loopback S3 server with boto3
(independent of maskprep's own client).

    s3.py ENDPOINT upload BUCKET LOCAL_DIR PREFIX   create BUCKET, upload the tree
    s3.py ENDPOINT download BUCKET PREFIX LOCAL_DIR every object under PREFIX
    s3.py ENDPOINT put BUCKET KEY LOCAL_FILE
    s3.py ENDPOINT delete BUCKET KEY
    s3.py ENDPOINT fill BUCKET PREFIX LOCAL_DIR N   N copies of LOCAL_DIR's PNGs

Credentials come from the environment (AWS_ACCESS_KEY_ID, ...).
"""
import os
import sys

import boto3


def client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def ensure_bucket(s3, bucket):
    names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    if bucket not in names:
        s3.create_bucket(Bucket=bucket)


def main():
    endpoint, cmd, bucket = sys.argv[1], sys.argv[2], sys.argv[3]
    s3 = client(endpoint)
    if cmd == "upload":
        local, prefix = sys.argv[4], sys.argv[5].strip("/")
        ensure_bucket(s3, bucket)
        for d, _, files in os.walk(local):
            for f in files:
                p = os.path.join(d, f)
                rel = os.path.relpath(p, local).replace(os.sep, "/")
                s3.upload_file(p, bucket, f"{prefix}/{rel}" if prefix else rel)
    elif cmd == "download":
        prefix, local = sys.argv[4].strip("/") + "/", sys.argv[5]
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for o in page.get("Contents", []):
                dest = os.path.join(local, o["Key"][len(prefix):])
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                s3.download_file(bucket, o["Key"], dest)
    elif cmd == "put":
        # One request, not a threaded multipart upload: moto answers large
        # parallel parts with 500s on a loaded machine.
        from boto3.s3.transfer import TransferConfig

        one = TransferConfig(multipart_threshold=1 << 40, use_threads=False)
        s3.upload_file(sys.argv[5], bucket, sys.argv[4], Config=one)
    elif cmd == "delete":
        s3.delete_object(Bucket=bucket, Key=sys.argv[4])
    elif cmd == "fill":
        prefix, local, n = sys.argv[4].strip("/"), sys.argv[5], int(sys.argv[6])
        ensure_bucket(s3, bucket)
        pngs = sorted(f for f in os.listdir(local) if f.endswith(".png"))
        blobs = [open(os.path.join(local, f), "rb").read() for f in pngs]
        for i in range(n):
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{i:06d}.png", Body=blobs[i % len(blobs)])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
