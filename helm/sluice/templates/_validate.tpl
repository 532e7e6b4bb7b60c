{{/*
Combinations values.schema.json cannot express; each fails the render with
a message naming the values to change.
*/}}
{{- define "sluice.validate" -}}
{{- $v := .Values -}}
{{- $micro := eq $v.deploymentMode "microservices" -}}
{{- if and $micro (eq $v.storage.type "filesystem") -}}
{{- fail "storage.type=filesystem works only with deploymentMode=singleBinary: ingesters and queriers in microservices mode must share object storage (use storage.type=s3, with minio.enabled=true if the cluster has no S3)" -}}
{{- end -}}
{{- if and $v.minio.enabled (ne $v.storage.type "s3") -}}
{{- fail "minio.enabled=true needs storage.type=s3" -}}
{{- end -}}
{{- if and (eq $v.storage.type "s3") (not $v.storage.bucketName) -}}
{{- fail "storage.bucketName must be set for storage.type=s3" -}}
{{- end -}}
{{- if and $v.minio.enabled $v.storage.s3.endpoint -}}
{{- fail "storage.s3.endpoint and minio.enabled=true both name an S3 server: set only one" -}}
{{- end -}}
{{- if and $v.storage.s3.accessKeyId (not $v.storage.s3.secretAccessKey) -}}
{{- fail "storage.s3.accessKeyId is set but storage.s3.secretAccessKey is empty" -}}
{{- end -}}
{{- if $micro -}}
{{- if and (not $v.memcached.ring.enabled) (not $v.memcached.ring.addresses) -}}
{{- fail "microservices mode needs a memcached for the ring: memcached.ring.enabled=true, or memcached.ring.addresses of an existing one" -}}
{{- end -}}
{{- if gt (int $v.sluice.ring.replication_factor) (int $v.ingester.replicas) -}}
{{- fail (printf "sluice.ring.replication_factor (%d) exceeds ingester.replicas (%d): every stream needs that many ingesters" (int $v.sluice.ring.replication_factor) (int $v.ingester.replicas)) -}}
{{- end -}}
{{- end -}}
{{- if and $v.sluice.auth_enabled $v.grafana.datasource.enabled (not $v.grafana.datasource.tenant) -}}
{{- fail "sluice.auth_enabled=true: set grafana.datasource.tenant (the X-Scope-OrgID Grafana sends) or grafana.datasource.enabled=false" -}}
{{- end -}}
{{- end -}}
