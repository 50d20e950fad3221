#!/bin/sh
# Entry point of the pipeline image (infra/Dockerfile): the compose worker, the Kubernetes GPU
# jobs and any one-off `docker run` pass through here. It turns configuration into DVC's own
# settings, then runs the command it was given:
#   DVC_REMOTE_URL   e.g. s3://dvc/rlaif: added as the default remote (in .dvc/config.local, so the
#                    committed .dvc/config is untouched). The S3 endpoint and credentials come from
#                    AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, which DVC's
#                    S3 client (botocore) reads itself.
#   DVC_REMOTE_NAME  the remote's name (default: team)
#   RLAIF_PROJECT_DIR the project checkout (default: /opt/rlaif, where the image puts it)
set -eu

project=${RLAIF_PROJECT_DIR:-/opt/rlaif}
if [ -n "${DVC_REMOTE_URL:-}" ]; then
  (cd "$project" && dvc remote add --local --force --default "${DVC_REMOTE_NAME:-team}" "$DVC_REMOTE_URL") >&2
fi
exec "$@"
