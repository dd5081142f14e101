#!/bin/sh
# One-shot (temporalio/admin-tools): wait for the frontend, create the namespace, register the
# custom search attributes the workflow upserts. Safe to rerun: existing ones are left alone.
# Uses TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE like the `temporal` CLI itself.
#
# The list below must equal core/search_attributes.ALL_KEYS (tests/deploy/test_compose.py
# checks it). Postgres visibility pre-allocates 10 Keyword, 3 Double and 3 Bool columns.
set -eu

ns="${TEMPORAL_NAMESPACE:-default}"
retention="${NAMESPACE_RETENTION:-336h}"

retry() {
    what=$1
    shift
    attempts=0
    until "$@" >/dev/null 2>&1; do
        attempts=$((attempts + 1))
        if [ "$attempts" -ge 60 ]; then
            echo "temporal-setup: gave up waiting for $what at ${TEMPORAL_ADDRESS:-?}" >&2
            "$@" || true
            exit 1
        fi
        sleep 2
    done
}

retry "the frontend" temporal operator cluster health

if temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1; then
    echo "temporal-setup: namespace $ns exists"
else
    temporal operator namespace create --namespace "$ns" --retention "$retention"
fi

# A new namespace takes a moment to reach every frontend's cache.
retry "namespace $ns" temporal operator search-attribute list --namespace "$ns"
existing=$(temporal operator search-attribute list --namespace "$ns")

register() {
    name=$1
    type=$2
    if printf '%s\n' "$existing" | grep -qw "$name"; then
        echo "temporal-setup: search attribute $name exists"
    else
        temporal operator search-attribute create --namespace "$ns" --name "$name" --type "$type"
    fi
}

register JobState Keyword
register Outcome Keyword
register Model Keyword
register ModelId Keyword
register Route Keyword
register ProviderTaskId Keyword
register CostUsd Double
register CostCny Double
register Fallback Bool
register ErrorCode Keyword
register Tenant Keyword
register Batch Keyword

echo "temporal-setup: done"
