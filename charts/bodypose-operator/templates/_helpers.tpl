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
