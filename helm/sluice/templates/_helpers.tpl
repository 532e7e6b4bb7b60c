{{/*
Names, labels and the pieces every Sluice workload shares.
*/}}

{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the release name alone when it already says "sluice". */}}
{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "sluice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sluice.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end -}}

{{- define "sluice.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "sluice.imageTag" .) -}}
{{- end -}}

{{/* Labels of every object. Call with (dict "ctx" $ "component" "x"). */}}
{{- define "sluice.labels" -}}
helm.sh/chart: {{ include "sluice.chart" .ctx }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ include "sluice.imageTag" .ctx | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: sluice
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that select one component's pods. Call with (dict "ctx" $ "component" "x"). */}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sluice.configMapName" -}}
{{- printf "%s-config" (include "sluice.fullname" .) -}}
{{- end -}}

{{/* The Secret the S3 credentials come from; empty when pods use an IAM role. */}}
{{- define "sluice.s3SecretName" -}}
{{- if .Values.storage.s3.existingSecret -}}
{{- .Values.storage.s3.existingSecret -}}
{{- else if or .Values.minio.enabled .Values.storage.s3.accessKeyId -}}
{{- printf "%s-s3-credentials" (include "sluice.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "sluice.minioName" -}}
{{- printf "%s-minio" (include "sluice.fullname" .) -}}
{{- end -}}

{{/* The S3 endpoint Sluice uses: the chart's MinIO, or storage.s3.endpoint. */}}
{{- define "sluice.s3Endpoint" -}}
{{- if .Values.minio.enabled -}}
{{- printf "http://%s.%s.svc:9000" (include "sluice.minioName" .) .Release.Namespace -}}
{{- else -}}
{{- .Values.storage.s3.endpoint -}}
{{- end -}}
{{- end -}}

{{/* Name of a memcached instance: ring, results or chunks. Call with (dict "ctx" $ "instance" "ring"). */}}
{{- define "sluice.memcachedName" -}}
{{- printf "%s-memcached-%s" (include "sluice.fullname" .ctx) .instance -}}
{{- end -}}

{{/*
host:port of every server of a memcached instance, as a JSON list: one per
pod of the chart's StatefulSet, or the configured addresses of an existing
one. Call with (dict "ctx" $ "instance" "ring" "values" .Values.memcached.ring).
*/}}
{{- define "sluice.memcachedAddresses" -}}
{{- $addresses := list -}}
{{- if .values.enabled -}}
{{- $name := include "sluice.memcachedName" . -}}
{{- range $index := until (int .values.replicas) -}}
{{- $addresses = append $addresses (printf "%s-%d.%s.%s.svc:11211" $name $index $name $.ctx.Release.Namespace) -}}
{{- end -}}
{{- else -}}
{{- $addresses = .values.addresses -}}
{{- end -}}
{{- toJson $addresses -}}
{{- end -}}

{{/* The Service Grafana and logcli talk to (port 3100). */}}
{{- define "sluice.apiServiceName" -}}
{{- include "sluice.fullname" . -}}
{{- end -}}

{{/* Which pods answer queries behind the API Service. */}}
{{- define "sluice.readComponent" -}}
{{- if eq .Values.deploymentMode "singleBinary" -}}
single-binary
{{- else if .Values.queryFrontend.enabled -}}
query-frontend
{{- else -}}
querier
{{- end -}}
{{- end -}}

{{/* The Service promtail pushes to. */}}
{{- define "sluice.pushServiceName" -}}
{{- if eq .Values.deploymentMode "singleBinary" -}}
{{- include "sluice.apiServiceName" . -}}
{{- else -}}
{{- printf "%s-distributor" (include "sluice.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
Pod anti-affinity spreading a component over nodes. Call with
(dict "ctx" $ "component" "x" "mode" "hard|soft|none" "affinity" {}).
An explicit affinity wins.
*/}}
{{- define "sluice.affinity" -}}
{{- if .affinity -}}
affinity:
  {{- toYaml .affinity | nindent 2 }}
{{- else if eq .mode "hard" -}}
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector:
          matchLabels:
            {{- include "sluice.selectorLabels" . | nindent 12 }}
        topologyKey: kubernetes.io/hostname
{{- else if eq .mode "soft" -}}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          labelSelector:
            matchLabels:
              {{- include "sluice.selectorLabels" . | nindent 14 }}
          topologyKey: kubernetes.io/hostname
{{- end -}}
{{- end -}}

{{/*
Pod template annotations: a checksum of the config, so a config change
rolls the pods. Call with (dict "ctx" $ "annotations" {}).
*/}}
{{- define "sluice.podAnnotations" -}}
checksum/config: {{ include "sluice.configYaml" .ctx | sha256sum }}
{{- with .ctx.Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- with .annotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The Sluice container. Call with (dict "ctx" $ "target" "ingester" "values"
.Values.ingester "ringMember" true).
*/}}
{{- define "sluice.container" -}}
{{- $ctx := .ctx -}}
- name: sluice
  image: {{ include "sluice.image" $ctx }}
  imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
  args:
    - -config.file=/etc/sluice/config.yaml
    - -config.expand-env=true
    - -target={{ .target }}
    {{- if .ringMember }}
    - -ring.instance-addr=$(POD_IP):9095
    {{- end }}
    {{- with .values.extraArgs }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  env:
    - name: POD_IP
      valueFrom:
        fieldRef:
          fieldPath: status.podIP
    {{- $secret := include "sluice.s3SecretName" $ctx }}
    {{- if and (eq $ctx.Values.storage.type "s3") $secret }}
    - name: AWS_ACCESS_KEY_ID
      valueFrom:
        secretKeyRef:
          name: {{ $secret }}
          key: {{ $ctx.Values.storage.s3.accessKeyIdKey }}
    - name: AWS_SECRET_ACCESS_KEY
      valueFrom:
        secretKeyRef:
          name: {{ $secret }}
          key: {{ $ctx.Values.storage.s3.secretAccessKeyKey }}
    {{- end }}
    {{- with .values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: http-metrics
      containerPort: 3100
      protocol: TCP
    - name: grpc
      containerPort: 9095
      protocol: TCP
  {{- with $ctx.Values.readinessProbe }}
  readinessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $ctx.Values.livenessProbe }}
  livenessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .values.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $ctx.Values.containerSecurityContext | nindent 4 }}
  volumeMounts:
    - name: config
      mountPath: /etc/sluice
      readOnly: true
    - name: data
      mountPath: /var/sluice
    - name: tmp
      mountPath: /tmp
    {{- if and .rules $ctx.Values.ruler.rules }}
    - name: rules
      mountPath: /etc/sluice-rules
      readOnly: true
    {{- end }}
{{- end -}}

{{/* The rule files of ruler.rules (ConfigMap <fullname>-rules), as
<tenant>/<file>; nothing when there are none. */}}
{{- define "sluice.rulesVolume" -}}
{{- if .Values.ruler.rules }}
- name: rules
  configMap:
    name: {{ include "sluice.fullname" . }}-rules
    items:
      {{- range $tenant, $files := .Values.ruler.rules }}
      {{- range $file, $_ := $files }}
      - key: {{ printf "%s__%s" $tenant $file | quote }}
        path: {{ printf "%s/%s" $tenant $file | quote }}
      {{- end }}
      {{- end }}
{{- end }}
{{- end -}}

{{/* Pod-level settings every Sluice pod shares. Call with (dict "ctx" $ "values" .Values.x). */}}
{{- define "sluice.podSpecCommon" -}}
{{- $ctx := .ctx -}}
serviceAccountName: {{ include "sluice.serviceAccountName" $ctx }}
automountServiceAccountToken: {{ $ctx.Values.serviceAccount.automountServiceAccountToken }}
{{- with $ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $ctx.Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ .values.terminationGracePeriodSeconds }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The config volume and /tmp; the data volume is the caller's. */}}
{{- define "sluice.commonVolumes" -}}
- name: config
  configMap:
    name: {{ include "sluice.configMapName" . }}
- name: tmp
  emptyDir: {}
{{- end -}}

{{/*
A HorizontalPodAutoscaler. Call with (dict "ctx" $ "component" "x" "kind"
"Deployment" "values" .Values.x).
*/}}
{{- define "sluice.hpa" -}}
{{- $name := printf "%s-%s" (include "sluice.fullname" .ctx) .component -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "sluice.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: {{ .kind }}
    name: {{ $name }}
  minReplicas: {{ .values.autoscaling.minReplicas }}
  maxReplicas: {{ .values.autoscaling.maxReplicas }}
  metrics:
    {{- with .values.autoscaling.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
    {{- with .values.autoscaling.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
{{- end -}}

{{/* A PodDisruptionBudget. Call with (dict "ctx" $ "component" "x" "maxUnavailable" 1). */}}
{{- define "sluice.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "sluice.fullname" .ctx }}-{{ .component }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "sluice.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .maxUnavailable }}
  selector:
    matchLabels:
      {{- include "sluice.selectorLabels" . | nindent 6 }}
{{- end -}}

{{/*
A component's ClusterIP Service on 3100 (HTTP) and 9095 (gRPC). Call with
(dict "ctx" $ "component" "x" "name" "svc-name" "headless" false "scrape" true).
*/}}
{{- define "sluice.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "sluice.labels" . | nindent 4 }}
    {{- if not .scrape }}
    prometheus.io/service-monitor: "false"
    {{- end }}
spec:
  type: ClusterIP
  {{- if .headless }}
  clusterIP: None
  publishNotReadyAddresses: true
  {{- end }}
  ports:
    - name: http-metrics
      port: 3100
      targetPort: http-metrics
      protocol: TCP
    - name: grpc
      port: 9095
      targetPort: grpc
      protocol: TCP
  selector:
    {{- include "sluice.selectorLabels" . | nindent 4 }}
{{- end -}}
