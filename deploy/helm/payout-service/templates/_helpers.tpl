{{/*
Chart name, truncated to 63 characters (the DNS label limit of Kubernetes names).
*/}}
{{- define "payout-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name, prefixed to the chart name unless it already
contains it. Truncated to 63 characters minus room for the longest component suffix
("-processor"), so every derived name stays a valid DNS label.
*/}}
{{- define "payout-service.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 53 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 53 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 53 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Namespace of every namespaced object (namespaceOverride for umbrella charts).
*/}}
{{- define "payout-service.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Chart name and version, as used by the helm.sh/chart label.
*/}}
{{- define "payout-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: immutable on Deployments, so only name and instance (plus the component,
added by "payout-service.componentSelectorLabels").
*/}}
{{- define "payout-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "payout-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Common labels of every object.
*/}}
{{- define "payout-service.labels" -}}
helm.sh/chart: {{ include "payout-service.chart" . }}
{{ include "payout-service.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "payout-service.name" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of one component. Call with (dict "ctx" $ "component" "api").
*/}}
{{- define "payout-service.componentSelectorLabels" -}}
{{ include "payout-service.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Labels of one component's objects. Call with (dict "ctx" $ "component" "api").
*/}}
{{- define "payout-service.componentLabels" -}}
{{ include "payout-service.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Name of one component's objects: <fullname>-<component>.
*/}}
{{- define "payout-service.componentName" -}}
{{- printf "%s-%s" (include "payout-service.fullname" .ctx) .component }}
{{- end }}

{{/*
ServiceAccount of the api and processor pods.
*/}}
{{- define "payout-service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "payout-service.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding DATABASE_URL, AMQP_URL and API_BOOTSTRAP_KEY.
*/}}
{{- define "payout-service.secretName" -}}
{{- default (include "payout-service.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/*
Image reference of a component. Call with (dict "ctx" $ "image" .Values.api.image).
registry/repository:tag, or @digest when a digest is set; the tag defaults to appVersion.
*/}}
{{- define "payout-service.image" -}}
{{- $registry := default .ctx.Values.image.registry .image.registry }}
{{- $repository := .image.repository }}
{{- $ref := ternary $repository (printf "%s/%s" $registry $repository) (empty $registry) }}
{{- if .image.digest }}
{{- printf "%s@%s" $ref .image.digest }}
{{- else }}
{{- printf "%s:%s" $ref (toString (default (default .ctx.Chart.AppVersion .ctx.Values.image.tag) .image.tag)) }}
{{- end }}
{{- end }}

{{/*
Pull policy of a component's image (its own, else the global one).
*/}}
{{- define "payout-service.imagePullPolicy" -}}
{{- default .ctx.Values.image.pullPolicy .image.pullPolicy }}
{{- end }}

{{/*
A secretKeyRef env entry. Call with (dict "ctx" $ "name" "DATABASE_URL" "key" "databaseUrl"
"optional" false).
*/}}
{{- define "payout-service.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "payout-service.secretName" .ctx }}
      key: {{ index .ctx.Values.secrets.keys .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}

{{/*
Checksum annotations: a change of the ConfigMap or of the chart-managed Secret rolls the pods.
With an existing Secret only its name is known; restart the pods yourself when it changes
(or use a reloader).
*/}}
{{- define "payout-service.checksumAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if .Values.secrets.existingSecret }}
checksum/secret: {{ .Values.secrets.existingSecret | sha256sum }}
{{- else }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{/*
Pod-level settings shared by every pod of the chart.
*/}}
{{- define "payout-service.podSecurity" -}}
automountServiceAccountToken: false
{{- with .Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The writable scratch space of a read-only root filesystem: an emptyDir at /tmp.
*/}}
{{- define "payout-service.tmpVolume" -}}
- name: tmp
  emptyDir:
    medium: Memory
    {{- with .Values.tmpVolume.sizeLimit }}
    sizeLimit: {{ . }}
    {{- end }}
{{- end }}

{{- define "payout-service.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
HTTP probes of a component. Call with (dict "probe" .Values.api.livenessProbe "path" "/healthz").
*/}}
{{- define "payout-service.httpProbe" -}}
httpGet:
  path: {{ .path }}
  port: http
initialDelaySeconds: {{ .probe.initialDelaySeconds }}
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- if hasKey .probe "successThreshold" }}
successThreshold: {{ .probe.successThreshold }}
{{- end }}
{{- end }}

{{/*
Topology spread constraints of a component, with the component's selector filled in where the
values leave labelSelector out. Call with (dict "ctx" $ "component" "api" "constraints" list).
*/}}
{{- define "payout-service.topologySpread" -}}
{{- $ctx := .ctx }}
{{- $component := .component }}
{{- range .constraints }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (include "payout-service.componentSelectorLabels" (dict "ctx" $ctx "component" $component) | fromYaml)) }}
{{- end }}
- {{ toYaml $c | nindent 2 | trim }}
{{- end }}
{{- end }}

{{/*
PROVIDER_URL: config.providerUrl, else the chart's simulated provider; one of them is required.
*/}}
{{- define "payout-service.providerUrl" -}}
{{- if .Values.config.providerUrl -}}
{{- .Values.config.providerUrl -}}
{{- else if .Values.providerSim.enabled -}}
{{- printf "http://%s:%v" (include "payout-service.componentName" (dict "ctx" . "component" "provider-sim")) .Values.providerSim.service.port -}}
{{- else -}}
{{- fail "config.providerUrl is required when providerSim.enabled is false: the processor needs a payout provider" -}}
{{- end -}}
{{- end -}}

{{/*
The TCP port of an OTLP endpoint URL (the context): its explicit port, else the scheme's.
*/}}
{{- define "payout-service.otlpPort" -}}
{{- $url := urlParse . -}}
{{- $parts := splitList ":" $url.host -}}
{{- if gt (len $parts) 1 -}}
{{- last $parts -}}
{{- else -}}
{{- ternary 443 80 (eq $url.scheme "https") -}}
{{- end -}}
{{- end }}
