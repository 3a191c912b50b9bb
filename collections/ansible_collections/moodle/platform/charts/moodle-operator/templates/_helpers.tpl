{{- define "moodle-operator.labels" -}}
app.kubernetes.io/name: moodle-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: moodle-platform
{{- end -}}
