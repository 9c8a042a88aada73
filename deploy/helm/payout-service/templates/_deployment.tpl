{{/*
Deployment of one component (api or processor). Call with
  (dict "ctx" $ "component" "api" "values" .Values.api
        "secretEnv" (list (list "DATABASE_URL" "databaseUrl" false) ...)
        "managedReplicas" true-when-an-autoscaler-owns-the-replica-count)
*/}}
{{- define "payout-service.deployment" -}}
{{- $ctx := .ctx }}
{{- $v := .values }}
{{- $component := .component }}
{{- $args := dict "ctx" $ctx "component" $component }}
{{- if le (float64 $v.terminationGracePeriodSeconds) (float64 $ctx.Values.config.shutdownGraceSeconds) }}
{{- fail (printf "%s.terminationGracePeriodSeconds (%v) must be greater than config.shutdownGraceSeconds (%v): Kubernetes would kill the pods before they drain" $component $v.terminationGracePeriodSeconds $ctx.Values.config.shutdownGraceSeconds) }}
{{- end }}
{{- $preStop := $v.preStopSleepSeconds | default 0 }}
{{- if le (float64 $v.terminationGracePeriodSeconds) (addf $preStop $ctx.Values.config.shutdownGraceSeconds) }}
{{- fail (printf "%s.terminationGracePeriodSeconds (%v) must be greater than preStopSleepSeconds (%v) + config.shutdownGraceSeconds (%v): Kubernetes would kill the pods before they drain" $component $v.terminationGracePeriodSeconds $preStop $ctx.Values.config.shutdownGraceSeconds) }}
{{- end }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "payout-service.componentName" $args }}
  namespace: {{ include "payout-service.namespace" $ctx }}
  labels:
    {{- include "payout-service.componentLabels" $args | nindent 4 }}
spec:
  {{- if not .managedReplicas }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  {{- with $v.strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "payout-service.componentSelectorLabels" $args | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "payout-service.componentLabels" $args | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        {{- include "payout-service.checksumAnnotations" $ctx | nindent 8 }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "payout-service.serviceAccountName" $ctx }}
      {{- include "payout-service.podSecurity" $ctx | nindent 6 }}
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      {{- with $v.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- if $ctx.Values.checkConfig.enabled }}
      initContainers:
        # Starts the service only once every setting is valid and PostgreSQL and RabbitMQ
        # answer; exit 2 (one line per problem in its log) and the kubelet retries it.
        - name: check-config
          image: {{ include "payout-service.image" (dict "ctx" $ctx "image" $v.image) | quote }}
          imagePullPolicy: {{ include "payout-service.imagePullPolicy" (dict "ctx" $ctx "image" $v.image) }}
          command:
            {{- toYaml $v.command | nindent 12 }}
          args:
            - --check-config
          {{- include "payout-service.containerEnv" . | nindent 10 }}
          {{- with $ctx.Values.checkConfig.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $ctx.Values.securityContext }}
          securityContext:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          volumeMounts:
            {{- include "payout-service.tmpVolumeMount" $ctx | nindent 12 }}
      {{- end }}
      containers:
        - name: {{ $component }}
          image: {{ include "payout-service.image" (dict "ctx" $ctx "image" $v.image) | quote }}
          imagePullPolicy: {{ include "payout-service.imagePullPolicy" (dict "ctx" $ctx "image" $v.image) }}
          command:
            {{- toYaml $v.command | nindent 12 }}
          {{- with $v.args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- if $preStop }}
          lifecycle:
            preStop:
              # Keep serving while endpoints and load balancers stop routing here; SIGTERM
              # (and the drain) only then.
              exec:
                command: ["sleep", {{ $preStop | quote }}]
          {{- end }}
          ports:
            - name: http
              containerPort: {{ $v.port }}
              protocol: TCP
          {{- include "payout-service.containerEnv" . | nindent 10 }}
          {{- if $v.startupProbe.enabled }}
          startupProbe:
            {{- include "payout-service.httpProbe" (dict "probe" $v.startupProbe "path" "/healthz") | nindent 12 }}
          {{- end }}
          {{- if $v.livenessProbe.enabled }}
          livenessProbe:
            {{- include "payout-service.httpProbe" (dict "probe" $v.livenessProbe "path" "/healthz") | nindent 12 }}
          {{- end }}
          {{- if $v.readinessProbe.enabled }}
          readinessProbe:
            {{- include "payout-service.httpProbe" (dict "probe" $v.readinessProbe "path" "/readyz") | nindent 12 }}
          {{- end }}
          {{- with $v.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $ctx.Values.securityContext }}
          securityContext:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          volumeMounts:
            {{- include "payout-service.tmpVolumeMount" $ctx | nindent 12 }}
      volumes:
        {{- include "payout-service.tmpVolume" $ctx | nindent 8 }}
      {{- with $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- include "payout-service.topologySpread" (dict "ctx" $ctx "component" $component "constraints" .) | trim | nindent 8 }}
      {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{/*
The environment of a component's containers (the service and its check-config init container):
the ConfigMap, the Secret's keys and extraEnv. Call with the deployment helper's dict.
*/}}
{{- define "payout-service.containerEnv" -}}
{{- $ctx := .ctx -}}
envFrom:
  - configMapRef:
      name: {{ include "payout-service.fullname" $ctx }}
env:
  {{- range .secretEnv }}
  {{- include "payout-service.secretEnv" (dict "ctx" $ctx "name" (index . 0) "key" (index . 1) "optional" (index . 2)) | nindent 2 }}
  {{- end }}
  {{- with $ctx.Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
