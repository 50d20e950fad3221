#!/bin/sh
# Run once by the compose service `minio-init` (image quay.io/minio/mc): creates the buckets
# `mlflow` (MLflow artifacts) and `dvc` (DVC remote) and the pipeline's own S3 user, whose
# policy (rlaif-policy.json, mounted beside this script) reaches those two buckets only.
# Safe to rerun: existing buckets are kept, the user's secret and policy are set again.
set -eu

: "${MINIO_URL:=http://minio:9000}"
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${RLAIF_S3_ACCESS_KEY:?}" "${RLAIF_S3_SECRET_KEY:?}"
here=$(dirname "$0")

mc alias set rlaif "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
for bucket in mlflow dvc; do
  mc mb --ignore-existing "rlaif/$bucket"
  mc anonymous set none "rlaif/$bucket"
done
mc admin policy create rlaif rlaif-pipeline "$here/rlaif-policy.json"
mc admin user add rlaif "$RLAIF_S3_ACCESS_KEY" "$RLAIF_S3_SECRET_KEY"
# attaching a policy that is already attached fails; only the result matters
mc admin policy attach rlaif rlaif-pipeline --user "$RLAIF_S3_ACCESS_KEY" ||
  mc admin user info rlaif "$RLAIF_S3_ACCESS_KEY" | grep -q rlaif-pipeline
echo "minio-init: buckets mlflow and dvc ready for user $RLAIF_S3_ACCESS_KEY"
