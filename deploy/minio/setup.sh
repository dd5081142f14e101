#!/bin/sh
# One-shot (minio/mc): the bucket the workers copy videos into, and the app's access key with
# a policy limited to that bucket. The root credentials stay with this service and MinIO.
# Safe to rerun: existing bucket, user and policy are updated in place.
set -eu

bucket=videos

attempts=0
until mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1; do
    attempts=$((attempts + 1))
    if [ "$attempts" -ge 30 ]; then
        echo "minio-setup: MinIO did not accept the root credentials" >&2
        exit 1
    fi
    sleep 2
done

mc mb --ignore-existing "local/$bucket"
mc admin policy create local seedance-videos /setup/seedance-videos-policy.json
mc admin user add local "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
if ! out=$(mc admin policy attach local seedance-videos --user "$AWS_ACCESS_KEY_ID" 2>&1); then
    case "$out" in
        *already*) echo "minio-setup: policy already attached" ;;
        *) echo "$out" >&2; exit 1 ;;
    esac
fi
echo "minio-setup: bucket $bucket ready for $AWS_ACCESS_KEY_ID"
