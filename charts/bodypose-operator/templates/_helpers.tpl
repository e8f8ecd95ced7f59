{{- define "bodypose.name" -}}bodypose-operator{{- end -}}
{{- define "bodypose.labels" -}}
app.kubernetes.io/name: {{ include "bodypose.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "bodypose.selector" -}}
app.kubernetes.io/name: {{ include "bodypose.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- /*
An image reference from {repository, tag}: imageRegistry prepended when set, the
chart's appVersion when tag is empty. Call: include "bodypose.image" (list $ .Values.image)
*/ -}}
{{- define "bodypose.image" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- $repository := $image.repository -}}
{{- with $root.Values.imageRegistry -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) $repository -}}
{{- end -}}
{{- printf "%s:%s" $repository (default $root.Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- define "bodypose.peering" -}}{{ include "bodypose.name" . }}-{{ .Release.Name }}{{- end -}}
{{- /*
"true" when the operator watches Kueue's Workloads (kueue.enabled, or a default queue in
jobs.queueName), else "false": the operator's BODYPOSE_KUEUE and kueue-rbac.yaml's switch.
*/ -}}
{{- define "bodypose.queueing" -}}
{{- if or .Values.kueue.enabled .Values.jobs.queueName -}}true{{- else -}}false{{- end -}}
{{- end -}}
