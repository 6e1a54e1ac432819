{{/*
Expand the name of the chart.
*/}}
{{- define "pingfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name. Truncated at 48 characters, so that with the component
suffixes appended below (at most "-agent-headless", 15) names keep to the 63-character DNS label.
If the release name contains the chart name it is used as the full name.
*/}}
{{- define "pingfleet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "pingfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "pingfleet.labels" -}}
helm.sh/chart: {{ include "pingfleet.chart" . }}
{{ include "pingfleet.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pingfleet
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels.
*/}}
{{- define "pingfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pingfleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Per-component names and labels: call with (dict "root" $ "component" "agent").
*/}}
{{- define "pingfleet.componentName" -}}
{{- printf "%s-%s" (include "pingfleet.fullname" .root) .component }}
{{- end }}

{{- define "pingfleet.componentLabels" -}}
{{ include "pingfleet.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "pingfleet.componentSelectorLabels" -}}
{{ include "pingfleet.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The image reference: a digest wins over the tag, and the tag defaults to the appVersion.
*/}}
{{- define "pingfleet.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The restricted Pod Security Standard, at pod and at container level.
*/}}
{{- define "pingfleet.podSecurityContext" -}}
runAsNonRoot: true
{{- with .Values.securityContext.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .Values.securityContext.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "pingfleet.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Fully qualified in-cluster names.
*/}}
{{- define "pingfleet.aggregatorUrl" -}}
{{- printf "http://%s.%s.svc.%s:%d" (include "pingfleet.componentName" (dict "root" . "component" "aggregator")) .Release.Namespace .Values.clusterDomain (int .Values.aggregator.port) }}
{{- end }}

{{- define "pingfleet.agentServiceTarget" -}}
{{- printf "%s.%s.svc.%s:%d" (include "pingfleet.componentName" (dict "root" . "component" "agent")) .Release.Namespace .Values.clusterDomain (int .Values.agent.port) }}
{{- end }}

{{/*
The Secret and key of the static token.
*/}}
{{- define "pingfleet.staticTokenSecretName" -}}
{{- default (include "pingfleet.componentName" (dict "root" . "component" "token")) .Values.auth.static.existingSecret }}
{{- end }}

{{- define "pingfleet.staticTokenSecretKey" -}}
{{- if .Values.auth.static.existingSecret }}{{ .Values.auth.static.existingSecretKey }}{{ else }}token{{ end }}
{{- end }}

{{/*
Pod annotations: a checksum of the chart-made token Secret (so a new token restarts the pods),
plus the user's. Call with (dict "root" $ "extra" .Values.<component>.podAnnotations).
*/}}
{{- define "pingfleet.podAnnotations" -}}
{{- $annotations := dict }}
{{- if and (eq .root.Values.auth.mode "static") (not .root.Values.auth.static.existingSecret) }}
{{- $_ := set $annotations "checksum/token" (include (print .root.Template.BasePath "/secret.yaml") .root | sha256sum) }}
{{- end }}
{{- with merge $annotations (.extra | default dict) }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
The agents' PriorityClass name ("" for none).
*/}}
{{- define "pingfleet.agentPriorityClassName" -}}
{{- if .Values.agent.priorityClass.create }}
{{- include "pingfleet.componentName" (dict "root" . "component" "agent") }}
{{- else }}
{{- .Values.agent.priorityClassName }}
{{- end }}
{{- end }}

{{/*
Fails the render on combinations the schema cannot express.
*/}}
{{- define "pingfleet.validate" -}}
{{- if and (eq .Values.auth.mode "static") (not .Values.auth.static.existingSecret) (not .Values.auth.static.token) }}
{{- fail "auth.mode=static needs auth.static.existingSecret (an existing Secret) or auth.static.token" }}
{{- end }}
{{- end }}

{{/*
The aggregator's gates file (PINGFLEET_GATES_FILE), from .Values.aggregator.gates.
*/}}
{{- define "pingfleet.gatesFile" -}}
{{ dict "gates" .Values.aggregator.gates | toYaml }}
{{- end }}
