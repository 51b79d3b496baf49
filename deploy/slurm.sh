#!/bin/bash
# maskprep on Slurm with no shared disk: a job array whose tasks each run one
# piece of the pipeline from and to a bucket (`--partition auto` reads
# SLURM_ARRAY_TASK_ID, _MIN and _COUNT), then one dependent job that merges
# the pieces. Submit both at once:
#
#   jid=$(sbatch --parsable deploy/slurm.sh)
#   sbatch --dependency=afterok:"$jid" --array=1 deploy/slurm.sh merge
#
# Credentials the standard way: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in
# the job's environment (or an instance role); AWS_ENDPOINT_URL for an
# S3-compatible store. The pipeline file is read from the submit directory.
#SBATCH --job-name=maskprep
#SBATCH --array=1-16
#SBATCH --cpus-per-task=4
#SBATCH --mem=4G
#SBATCH --time=04:00:00
#SBATCH --output=maskprep-%A_%a.log
set -euo pipefail

PIPELINE=${PIPELINE:-deploy/pipeline-s3.toml}
export AWS_REGION=${AWS_REGION:-us-east-1}

if [ "${1:-}" = merge ]; then
    maskprep merge-run s3://my-bucket/runs/plates/parts -o s3://my-bucket/runs/plates
    exit
fi

maskprep run "$PIPELINE" --partition auto --threads "$SLURM_CPUS_PER_TASK" --quiet
