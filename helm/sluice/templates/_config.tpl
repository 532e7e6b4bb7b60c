{{/*
The Sluice configuration every pod loads (the target comes from -target).
Built as a dictionary from values, deep-merged with sluice.structuredConfig,
and printed as YAML; `make chart-test` runs it through
`sluice -config.verify` for every target the chart starts.
*/}}
{{- define "sluice.configDict" -}}
{{- $v := .Values -}}
{{- $s := $v.sluice -}}
{{- $micro := eq $v.deploymentMode "microservices" -}}

{{- $server := deepCopy ($s.server | default dict) -}}
{{- $_ := set $server "http_listen_port" 3100 -}}
{{- $_ := set $server "grpc_listen_port" 9095 -}}

{{- $ring := deepCopy ($s.ring | default dict) -}}
{{- if $micro -}}
{{- $addresses := include "sluice.memcachedAddresses" (dict "ctx" . "instance" "ring" "values" $v.memcached.ring) | fromJsonArray -}}
{{- $_ := set $ring "kvstore" (dict "store" "memcached" "memcached" (dict "addresses" $addresses "timeout" "1s")) -}}
{{- else -}}
{{- $_ := set $ring "kvstore" (dict "store" "inmemory") -}}
{{- $_ := set $ring "replication_factor" 1 -}}
{{- end -}}

{{- $objectStore := "filesystem" -}}
{{- $storage := dict -}}
{{- if eq $v.storage.type "s3" -}}
{{- $objectStore = "s3" -}}
{{- $aws := dict "bucketnames" $v.storage.bucketName "region" $v.storage.s3.region "s3forcepathstyle" (or $v.minio.enabled $v.storage.s3.s3ForcePathStyle) "insecure" (or $v.minio.enabled $v.storage.s3.insecure) -}}
{{- with include "sluice.s3Endpoint" . -}}
{{- $_ := set $aws "endpoint" . -}}
{{- end -}}
{{- if include "sluice.s3SecretName" . -}}
{{- $_ := set $aws "access_key_id" "${AWS_ACCESS_KEY_ID}" -}}
{{- $_ := set $aws "secret_access_key" "${AWS_SECRET_ACCESS_KEY}" -}}
{{- end -}}
{{- $_ := set $storage "aws" $aws -}}
{{- else -}}
{{- $_ := set $storage "filesystem" (dict "directory" "/var/sluice/chunks") -}}
{{- end -}}
{{- $_ := set $storage "index_shipper" (dict "cache_location" "/var/sluice/index_cache") -}}

{{- $config := dict
  "auth_enabled" $s.auth_enabled
  "server" $server
  "common" (dict "path_prefix" "/var/sluice" "ring" $ring)
  "distributor" (deepCopy ($s.distributor | default dict))
  "ingester" (deepCopy ($s.ingester | default dict))
  "querier" (deepCopy ($s.querier | default dict))
  "limits_config" (deepCopy ($s.limits_config | default dict))
  "storage_config" $storage
  "schema_config" (dict "configs" (list (dict "from" $s.schemaStartDate "store" "tsdb" "object_store" $objectStore "schema" "v13" "index" (dict "prefix" "index_" "period" "24h"))))
-}}

{{- if and $micro $v.compactor.enabled -}}
{{- $compactor := deepCopy ($s.compactor | default dict) -}}
{{- $_ := set $compactor "working_directory" "/var/sluice/compactor" -}}
{{- $_ := set $config "compactor" $compactor -}}
{{- end -}}

{{- if or (not $micro) $v.ruler.enabled -}}
{{- $ruler := deepCopy ($s.ruler | default dict) -}}
{{- $_ := set $ruler "storage" (dict "type" "local" "local" (dict "directory" "/etc/sluice-rules")) -}}
{{- $wal := deepCopy ($ruler.wal | default dict) -}}
{{- $_ := set $wal "dir" "/var/sluice/ruler-wal" -}}
{{- $_ := set $ruler "wal" $wal -}}
{{- if $micro -}}
{{- /* Rulers share the groups on the memcached ring (common.ring). */ -}}
{{- $_ := set $ruler "enable_sharding" true -}}
{{- end -}}
{{- $_ := set $config "ruler" $ruler -}}
{{- end -}}

{{- if and $micro $v.queryFrontend.enabled -}}
{{- $frontend := deepCopy ($s.frontend | default dict) -}}
{{- /* Live tails (WebSockets) are proxied to the queriers' Service. */ -}}
{{- if not $frontend.tail_proxy_url -}}
{{- $_ := set $frontend "tail_proxy_url" (printf "http://%s-querier:3100" (include "sluice.fullname" .)) -}}
{{- end -}}
{{- /* Grafana's alerting UI reads the rules API on the data source URL. */ -}}
{{- if and $v.ruler.enabled (not $frontend.ruler_proxy_url) -}}
{{- $_ := set $frontend "ruler_proxy_url" (printf "http://%s-ruler:3100" (include "sluice.fullname" .)) -}}
{{- end -}}
{{- $_ := set $config "frontend" $frontend -}}
{{- $queryRange := deepCopy ($s.query_range | default dict) -}}
{{- $results := include "sluice.memcachedAddresses" (dict "ctx" . "instance" "results" "values" $v.memcached.resultsCache) | fromJsonArray -}}
{{- if $results -}}
{{- $_ := set $queryRange "cache_results" true -}}
{{- $_ := set $queryRange "results_cache" (dict "cache" (dict "memcached_client" (dict "addresses" $results))) -}}
{{- end -}}
{{- $_ := set $config "query_range" $queryRange -}}
{{- /* Queriers pull work from the frontends over gRPC. */ -}}
{{- $_ := set $config "frontend_worker" (dict "frontend_address" (printf "%s-query-frontend:%v" (include "sluice.fullname" .) 9095)) -}}
{{- end -}}

{{- toJson (mustMergeOverwrite $config (deepCopy ($s.structuredConfig | default dict))) -}}
{{- end -}}

{{- define "sluice.configYaml" -}}
{{- include "sluice.configDict" . | fromJson | toYaml -}}
{{- end -}}
