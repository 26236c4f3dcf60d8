{{/*
Helpers shared by the templates. Object names are the plain service names
(mission, wallet, …): the gateway's upstream URLs, the wallet's GIFT_URL and
the Istio manifests in mesh/ (hosts, ServiceAccount principals) rely on them,
so install one release per namespace.
*/}}

{{- define "game-rewards.chartName" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The `version` label: values.version, else the image tag, else appVersion. */}}
{{- define "game-rewards.version" -}}
{{- $v := .Values.version | default .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- regexReplaceAll "[^-A-Za-z0-9_.]" $v "_" | trunc 63 | trimAll "-_." -}}
{{- end -}}

{{- define "game-rewards.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object of the release. */}}
{{- define "game-rewards.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: {{ include "game-rewards.chartName" . }}
app.kubernetes.io/version: {{ include "game-rewards.version" . | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of one service's objects. Context: dict "root" $ "name" <service> "component" <service|gateway>. */}}
{{- define "game-rewards.serviceLabels" -}}
{{ include "game-rewards.commonLabels" .root }}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/component: {{ .component }}
app: {{ .name }}
version: {{ include "game-rewards.version" .root | quote }}
{{- end -}}

{{/* Immutable selector of one service's pods. Context: dict "root" $ "name" <service>. */}}
{{- define "game-rewards.selectorLabels" -}}
app: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* The NATS Service name of the bundled NATS chart (its nats.fullname). */}}
{{- define "game-rewards.natsServiceName" -}}
{{- if .Values.nats.fullnameOverride -}}
{{- .Values.nats.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains "nats" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-nats" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* NATS_URL: the bundled NATS, or nats.url. */}}
{{- define "game-rewards.natsUrl" -}}
{{- if .Values.nats.enabled -}}
{{- printf "nats://%s:%v" (include "game-rewards.natsServiceName" .) (dig "config" "nats" "port" 4222 .Values.nats | int) -}}
{{- else -}}
{{- .Values.nats.url -}}
{{- end -}}
{{- end -}}

{{/* The bundled NATS monitoring endpoint (host:port), for KEDA. */}}
{{- define "game-rewards.natsMonitoring" -}}
{{- printf "%s.%s.svc.cluster.local:%v" (include "game-rewards.natsServiceName" .) .Release.Namespace (dig "config" "monitor" "port" 8222 .Values.nats | int) -}}
{{- end -}}

{{/* Seconds between SIGTERM-after-preStop and SIGKILL the service may need:
the server drains calls in flight for up to SHUTDOWN_GRACE_MS, then consumers
and the outbox relay get up to SHUTDOWN_GRACE_MS again (crates/platform host.rs).
Context: the merged service settings. */}}
{{- define "game-rewards.drainSeconds" -}}
{{- $grace := div (add (int .shutdownGraceMs) 999) 1000 -}}
{{- add (int .preStopSleepSeconds) (mul 2 $grace) -}}
{{- end -}}

{{- define "game-rewards.terminationGracePeriodSeconds" -}}
{{- if gt (int .terminationGracePeriodSeconds) 0 -}}
{{- int .terminationGracePeriodSeconds -}}
{{- else -}}
{{- add (include "game-rewards.drainSeconds" . | int) 5 -}}
{{- end -}}
{{- end -}}

{{/* The gRPC port a service listens on: the gateway's edge port, else 50051. */}}
{{- define "game-rewards.grpcPort" -}}
{{- if eq .component "gateway" -}}8080{{- else -}}50051{{- end -}}
{{- end -}}

{{/*
Checks that values.schema.json cannot express because they need `defaults`
and `services.<name>` merged. Each failure says what to change.
*/}}
{{- define "game-rewards.validate" -}}
{{- $root := . -}}
{{- if and .Values.nats.enabled .Values.nats.url -}}
{{- fail "nats: set either nats.enabled=true (install NATS with this release) or nats.url (an existing server), not both" -}}
{{- end -}}
{{- if not (or .Values.nats.enabled .Values.nats.url) -}}
{{- fail "nats: the services need NATS JetStream: set nats.enabled=true or nats.url=nats://<host>:4222" -}}
{{- end -}}
{{- if and .Values.nats.enabled (not (hasKey (.Subcharts | default dict) "nats")) -}}
{{- fail "nats.enabled=true but the NATS chart is not in charts/: run `helm dependency update helm/game-rewards`, or use an existing server with nats.enabled=false,nats.url=…" -}}
{{- end -}}
{{- if and .Values.auth.jwksUrl (or .Values.auth.jwks.inline .Values.auth.jwks.existingConfigMap .Values.auth.jwks.existingSecret) -}}
{{- fail "auth: set either auth.jwksUrl or one of auth.jwks.inline/existingConfigMap/existingSecret, not both" -}}
{{- end -}}
{{- if gt (len (compact (list .Values.auth.jwks.inline .Values.auth.jwks.existingConfigMap .Values.auth.jwks.existingSecret))) 1 -}}
{{- fail "auth.jwks: set only one of inline, existingConfigMap, existingSecret" -}}
{{- end -}}
{{- range $name, $raw := .Values.services -}}
{{- $s := mergeOverwrite (deepCopy $root.Values.defaults) (deepCopy $raw) -}}
{{- if $s.enabled -}}
{{- $replicas := int $s.replicas -}}
{{- if and (eq $s.component "service") (eq $s.database.type "sqlite") -}}
{{- if gt $replicas 1 -}}
{{- fail (printf "services.%s: replicas=%d on SQLite; a SQLite file has one writer, so a SQLite-backed service runs exactly one pod (a StatefulSet). Use database.type=postgres for more replicas" $name $replicas) -}}
{{- end -}}
{{- if $s.autoscaling.enabled -}}
{{- fail (printf "services.%s: autoscaling on SQLite; a SQLite-backed service runs exactly one pod. Use database.type=postgres to autoscale" $name) -}}
{{- end -}}
{{- end -}}
{{- if and (eq $s.component "service") (eq $s.database.type "postgres") (not (or $s.database.postgres.url $s.database.postgres.existingSecret)) -}}
{{- fail (printf "services.%s: database.type=postgres needs database.postgres.url or database.postgres.existingSecret" $name) -}}
{{- end -}}
{{- if and $s.database.postgres.url $s.database.postgres.existingSecret -}}
{{- fail (printf "services.%s: set database.postgres.url or database.postgres.existingSecret, not both" $name) -}}
{{- end -}}
{{- if and $s.autoscaling.enabled (gt (int $s.autoscaling.minReplicas) (int $s.autoscaling.maxReplicas)) -}}
{{- fail (printf "services.%s: autoscaling.minReplicas (%d) is above maxReplicas (%d)" $name (int $s.autoscaling.minReplicas) (int $s.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- if and $s.autoscaling.enabled $s.autoscaling.consumerLag.enabled (eq $s.autoscaling.consumerLag.mode "keda") ($s.consumers | default list) (not $root.Values.nats.enabled) (not $s.autoscaling.consumerLag.natsMonitoringEndpoint) -}}
{{- fail (printf "services.%s: KEDA's NATS JetStream scaler needs autoscaling.consumerLag.natsMonitoringEndpoint (host:8222) when NATS is not installed by this chart" $name) -}}
{{- end -}}
{{- $drain := include "game-rewards.drainSeconds" $s | int -}}
{{- if and (gt (int $s.terminationGracePeriodSeconds) 0) (le (int $s.terminationGracePeriodSeconds) $drain) -}}
{{- fail (printf "services.%s: terminationGracePeriodSeconds=%d must exceed preStopSleepSeconds + 2 × shutdownGraceMs = %ds, or the pod is killed mid-drain (leave it 0 to compute it)" $name (int $s.terminationGracePeriodSeconds) $drain) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
