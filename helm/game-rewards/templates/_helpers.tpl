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

{{/* The bundled NATS monitoring endpoint (host:port), for KEDA: the
headless Service, because KEDA's scaler asks a clustered NATS for the node
that leads a consumer and then reaches that node as <pod>.<this host>, a
name only the headless Service resolves (its ClusterIP Service does not
even expose the monitoring port). */}}
{{- define "game-rewards.natsMonitoring" -}}
{{- $headless := dig "headlessService" "name" "" .Values.nats | default (printf "%s-headless" (include "game-rewards.natsServiceName" .)) -}}
{{- printf "%s.%s.svc.cluster.local:%v" $headless .Release.Namespace (dig "config" "monitor" "port" 8222 .Values.nats | int) -}}
{{- end -}}

{{/* The bundled NATS pods' selector labels (the NATS chart's nats.selectorLabels). */}}
{{- define "game-rewards.natsSelectorLabels" -}}
app.kubernetes.io/name: {{ dig "nameOverride" "" .Values.nats | default "nats" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: nats
{{- end -}}

{{/* The bundled NATS pods' ServiceAccount (their mesh identity). */}}
{{- define "game-rewards.natsServiceAccount" -}}
{{- dig "serviceAccount" "name" "" .Values.nats | default (include "game-rewards.natsServiceName" .) -}}
{{- end -}}

{{/* "true" when some enabled service scales on consumer lag with KEDA, else "". */}}
{{- define "game-rewards.kedaUsed" -}}
{{- $root := . -}}
{{- range $name, $raw := .Values.services -}}
{{- $s := mergeOverwrite (deepCopy $root.Values.defaults) (deepCopy $raw) -}}
{{- if and $s.enabled $s.autoscaling.enabled $s.autoscaling.consumerLag.enabled (eq $s.autoscaling.consumerLag.mode "keda") ($s.consumers | default list) -}}
true
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Milliseconds of an Istio duration ("2.5s", "500ms", "1m", "1h"). */}}
{{- define "game-rewards.durationMs" -}}
{{- $d := toString . | trim -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$" $d) -}}
{{- fail (printf "%q is not a duration like 2.5s, 500ms or 1m" $d) -}}
{{- else if hasSuffix "ms" $d -}}
{{- trimSuffix "ms" $d | float64 | int -}}
{{- else if hasSuffix "s" $d -}}
{{- mulf (trimSuffix "s" $d | float64) 1000 | int -}}
{{- else if hasSuffix "m" $d -}}
{{- mulf (trimSuffix "m" $d | float64) 60000 | int -}}
{{- else -}}
{{- mulf (trimSuffix "h" $d | float64) 3600000 | int -}}
{{- end -}}
{{- end -}}

{{/*
One source for timeouts: the wallet's deadlines for gift (its GIFT_* settings
in values.yaml, services.wallet.config, which the chart always passes to the
pods) decide how long the mesh's routes must wait. Each route must outlast
what the app behind it may take, so the caller gets the app's own answer
(DEADLINE_EXCEEDED → re-driven; "the gift exchange is busy") and never an
Envoy timeout, which arrives as UNAVAILABLE:
- gift/exchange (wallet → gift) ≥ GIFT_TIMEOUT_MS + 500 ms;
- wallet/exchange-reward (gateway → wallet) ≥ GIFT_RETRY_MAX_ATTEMPTS ×
  GIFT_TIMEOUT_MS + (attempts − 1) × GIFT_RETRY_BACKOFF_MAX_MS + 500 ms
  (the saga's worst case plus its own store work);
- game-rewards-edge/exchange-reward (ingress → gateway) above that again
  (scripts/validate_manifests.py checks every edge route against the routes
  behind it).
Context: dict "root" $ "timeouts" {"<VirtualService>/<route>": duration}.
*/}}
{{- define "game-rewards.checkDeadlines" -}}
{{- $root := .root -}}
{{- $wallet := mergeOverwrite (deepCopy $root.Values.defaults) (deepCopy (index $root.Values.services "wallet" | default dict)) -}}
{{- if $wallet.enabled -}}
{{- $config := $wallet.config | default dict -}}
{{- range $key := list "GIFT_TIMEOUT_MS" "GIFT_RETRY_MAX_ATTEMPTS" "GIFT_RETRY_BACKOFF_MAX_MS" -}}
{{- if not (hasKey $config $key) -}}
{{- fail (printf "services.wallet.config.%s is missing: it is the one source of the wallet's gift deadline, which the mesh's route timeouts are checked against (values.yaml sets it)" $key) -}}
{{- end -}}
{{- end -}}
{{- $deadline := int (toString $config.GIFT_TIMEOUT_MS) -}}
{{- $attempts := int (toString $config.GIFT_RETRY_MAX_ATTEMPTS) -}}
{{- $backoff := int (toString $config.GIFT_RETRY_BACKOFF_MAX_MS) -}}
{{- with get .timeouts "gift/exchange" -}}
{{- $route := include "game-rewards.durationMs" . | int -}}
{{- $needed := add $deadline 500 -}}
{{- if lt $route $needed -}}
{{- fail (printf "route timeout gift/exchange (mesh/traffic/gift.yaml) is %d ms, below the wallet's gift deadline GIFT_TIMEOUT_MS %d ms + 500 ms = %d ms: Envoy would cut the call first and wallet would see UNAVAILABLE instead of its own DEADLINE_EXCEEDED. Lower services.wallet.config.GIFT_TIMEOUT_MS or raise istio.routeTimeouts[\"gift/exchange\"]" $route $deadline $needed) -}}
{{- end -}}
{{- end -}}
{{- with get .timeouts "wallet/exchange-reward" -}}
{{- $route := include "game-rewards.durationMs" . | int -}}
{{- $needed := add (mul $attempts $deadline) (mul (sub $attempts 1) $backoff) 500 -}}
{{- if lt $route $needed -}}
{{- fail (printf "route timeout wallet/exchange-reward (mesh/traffic/wallet.yaml) is %d ms, below the wallet's worst case for one exchange: GIFT_RETRY_MAX_ATTEMPTS %d × GIFT_TIMEOUT_MS %d ms + %d × GIFT_RETRY_BACKOFF_MAX_MS %d ms + 500 ms = %d ms: the player would get a mesh timeout instead of wallet's answer. Lower the wallet's GIFT_* settings or raise istio.routeTimeouts[\"wallet/exchange-reward\"] (and the edge's game-rewards-edge/exchange-reward above it)" $route $attempts $deadline (sub $attempts 1) $backoff $needed) -}}
{{- end -}}
{{- end -}}
{{- end -}}
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

{{/* "true" when pods carry prometheus.io/* annotations (monitoring.podAnnotations:
auto = unless a ServiceMonitor scrapes them), else "". */}}
{{- define "game-rewards.podScrapeAnnotations" -}}
{{- $mode := toString .Values.monitoring.podAnnotations -}}
{{- if or (eq $mode "true") (and (eq $mode "auto") (not .Values.monitoring.serviceMonitor.enabled)) -}}
true
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
{{- fail "nats.enabled=true but the NATS chart is not in charts/: this repository vendors it in helm/game-rewards/charts/nats (pinned by Chart.lock; restore it with `git checkout -- helm/game-rewards/charts/nats`, or `helm dependency build helm/game-rewards` with network), or use an existing server with nats.enabled=false,nats.url=…" -}}
{{- end -}}
{{- if and (eq (toString .Values.monitoring.podAnnotations) "true") .Values.monitoring.serviceMonitor.enabled -}}
{{- fail "monitoring.podAnnotations=true with monitoring.serviceMonitor.enabled=true: every series would be scraped twice (by the annotations and by the ServiceMonitor). Leave podAnnotations at auto (the ServiceMonitor alone scrapes) or turn one of them off" -}}
{{- end -}}
{{- $streamReplicas := int (.Values.nats.streamReplicas | default 1) -}}
{{- if .Values.nats.enabled -}}
{{- $clustered := dig "config" "cluster" "enabled" false .Values.nats -}}
{{- $nodes := ternary (int (dig "config" "cluster" "replicas" 3 .Values.nats)) 1 $clustered -}}
{{- if gt $streamReplicas $nodes -}}
{{- fail (printf "nats.streamReplicas=%d but the bundled NATS runs %d server(s): JetStream cannot keep %d copies of a stream on fewer servers. Enable nats.config.cluster (replicas >= %d) or lower nats.streamReplicas" $streamReplicas $nodes $streamReplicas $streamReplicas) -}}
{{- end -}}
{{- if .Values.istio.enabled -}}
{{- range $where := list "labels" "annotations" -}}
{{- if eq "false" (dig "podTemplate" "merge" "metadata" $where "sidecar.istio.io/inject" "" $.Values.nats | toString) -}}
{{- fail (printf "nats.podTemplate.merge.metadata.%s sidecar.istio.io/inject=false: under Istio the bundled NATS runs inside the mesh (STRICT mTLS, the `nats` AuthorizationPolicy allows only the services and KEDA); without a sidecar the services' mTLS connections to it fail. Remove the opt-out, or use an existing NATS outside the mesh (nats.enabled=false, nats.url)" $where) -}}
{{- end -}}
{{- end -}}
{{- if .Values.istio.security -}}
{{- if dig "natsBox" "enabled" true .Values.nats -}}
{{- fail "nats.natsBox.enabled=true under Istio: the `nats` AuthorizationPolicy allows only the services and KEDA, so nats-box could not connect. Leave it off (use `kubectl port-forward svc/nats 4222` and rewardsctl)" -}}
{{- end -}}
{{- if and $clustered (not (dig "serviceAccount" "enabled" false .Values.nats)) -}}
{{- fail "nats.serviceAccount.enabled=false with a NATS cluster under Istio: the servers' routes to each other (port 6222) are allowed by their own identity, which needs their own ServiceAccount (otherwise they run as `default`, shared with any pod)" -}}
{{- end -}}
{{- end -}}
{{- end -}}
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
