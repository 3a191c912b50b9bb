{{/* Base name of every object: the release name unless overridden. */}}
{{- define "moodle.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "moodle.labels" -}}
app.kubernetes.io/name: moodle
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: moodle-platform
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels for one component (web, cron, upgrade, db, redis). */}}
{{- define "moodle.selectorLabels" -}}
app.kubernetes.io/name: moodle
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "moodle.image" -}}
{{- printf "%s:%s" .Values.image.repository (toString .Values.image.tag) -}}
{{- end -}}

{{/* "true" when this release runs its own database: database.type's in-chart server is enabled. */}}
{{- define "moodle.inChartDb" -}}
{{- if eq .Values.database.type "pgsql" -}}{{ ternary "true" "" (.Values.postgresql.enabled | default false) }}{{- else -}}{{ ternary "true" "" (.Values.mariadb.enabled | default false) }}{{- end -}}
{{- end -}}

{{- define "moodle.dbDefaultPort" -}}
{{- if eq .Values.database.type "pgsql" -}}5432{{- else -}}3306{{- end -}}
{{- end -}}

{{- define "moodle.dbHost" -}}
{{- if include "moodle.inChartDb" . -}}{{ include "moodle.fullname" . }}-db{{- else -}}{{ required (printf "externalDatabase.host is required when %s.enabled=false" (ternary "postgresql" "mariadb" (eq .Values.database.type "pgsql"))) .Values.externalDatabase.host }}{{- end -}}
{{- end -}}

{{- define "moodle.dbPort" -}}
{{- if include "moodle.inChartDb" . -}}{{ include "moodle.dbDefaultPort" . }}{{- else -}}{{ .Values.externalDatabase.port | default (include "moodle.dbDefaultPort" .) }}{{- end -}}
{{- end -}}

{{- define "moodle.redisHost" -}}
{{- if .Values.redis.enabled -}}{{ include "moodle.fullname" . }}-redis{{- else -}}{{ .Values.externalRedis.host }}{{- end -}}
{{- end -}}

{{- define "moodle.redisPort" -}}
{{- if .Values.redis.enabled -}}6379{{- else -}}{{ .Values.externalRedis.port }}{{- end -}}
{{- end -}}

{{- define "moodle.secretName" -}}
{{- required "auth.existingSecret is required: the chart only references credentials, it never creates them" .Values.auth.existingSecret -}}
{{- end -}}

{{/*
Moodle's clustering rules, checked before anything renders: several web pods need a shared
(ReadWriteMany) dataroot and sessions outside the dataroot (Redis).
*/}}
{{- define "moodle.validate" -}}
{{- if not (has .Values.database.type (list "mariadb" "pgsql")) -}}
{{- fail (printf "database.type must be mariadb or pgsql (Moodle's dbtype), got %q" (toString .Values.database.type)) -}}
{{- end -}}
{{- $port := toString .Values.externalDatabase.port -}}
{{- if and $port (not (regexMatch "^[0-9]{1,5}$" $port)) -}}
{{- fail (printf "externalDatabase.port must be a port number or empty (the database type's default), got %q" $port) -}}
{{- end -}}
{{- $replicas := int .Values.replicaCount -}}
{{- if lt $replicas 1 -}}
{{- fail "replicaCount must be at least 1" -}}
{{- end -}}
{{- if not (has .Values.sessions.handler (list "redis" "file")) -}}
{{- fail (printf "sessions.handler must be redis or file, got %q" .Values.sessions.handler) -}}
{{- end -}}
{{- if not (has .Values.persistence.accessMode (list "ReadWriteOnce" "ReadWriteMany" "ReadWriteOncePod")) -}}
{{- fail (printf "persistence.accessMode must be ReadWriteOnce, ReadWriteMany or ReadWriteOncePod, got %q" .Values.persistence.accessMode) -}}
{{- end -}}
{{- if gt $replicas 1 -}}
{{- if not .Values.persistence.enabled -}}
{{- fail (printf "replicaCount=%d needs persistence.enabled=true with ReadWriteMany storage: every web pod must share one moodledata" $replicas) -}}
{{- end -}}
{{- if ne .Values.persistence.accessMode "ReadWriteMany" -}}
{{- fail (printf "replicaCount=%d needs persistence.accessMode=ReadWriteMany (got %s): Moodle's dataroot must be shared by every web pod" $replicas .Values.persistence.accessMode) -}}
{{- end -}}
{{- if ne .Values.sessions.handler "redis" -}}
{{- fail (printf "replicaCount=%d needs sessions.handler=redis (got %s): file sessions in a shared dataroot break under load" $replicas .Values.sessions.handler) -}}
{{- end -}}
{{- end -}}
{{- if .Values.install.enabled -}}
{{- range $key := list "adminUser" "fullname" "shortname" "lang" -}}
{{- if not (index $.Values.install $key) -}}
{{- fail (printf "install.%s must not be empty when install.enabled=true" $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $preStop := int .Values.web.preStopSleepSeconds -}}
{{- if or (lt $preStop 0) (gt $preStop 25) -}}
{{- fail (printf "web.preStopSleepSeconds must be 0-25 (the pod's termination grace period is 30 s), got %v" .Values.web.preStopSleepSeconds) -}}
{{- end -}}
{{- if not (has .Values.blueGreen.active (list "main" "candidate")) -}}
{{- fail (printf "blueGreen.active must be main or candidate, got %q" .Values.blueGreen.active) -}}
{{- end -}}
{{- if and (eq .Values.blueGreen.active "candidate") (not .Values.blueGreen.candidateTag) -}}
{{- fail "blueGreen.active=candidate needs blueGreen.candidateTag (there is no candidate Deployment to send traffic to)" -}}
{{- end -}}
{{- if and (eq .Values.sessions.handler "redis") (not .Values.redis.enabled) (not .Values.externalRedis.host) -}}
{{- fail "sessions.handler=redis needs redis.enabled=true or externalRedis.host" -}}
{{- end -}}
{{- end -}}

{{/* Environment shared by web, cron and Jobs: where things are, never the secrets themselves. */}}
{{- define "moodle.env" -}}
- name: MOODLE_HTTP_PORT
  value: {{ .Values.web.containerPort | quote }}
- name: MOODLE_WWWROOT
  value: {{ .Values.wwwroot | quote }}
- name: MOODLE_DATAROOT
  value: /var/www/moodledata
- name: MOODLE_DB_TYPE
  value: {{ .Values.database.type | quote }}
- name: MOODLE_DB_HOST
  value: {{ include "moodle.dbHost" . | quote }}
- name: MOODLE_DB_PORT
  value: {{ include "moodle.dbPort" . | quote }}
- name: MOODLE_DB_NAME
  value: {{ .Values.database.name | quote }}
- name: MOODLE_DB_USER
  value: {{ .Values.database.user | quote }}
- name: MOODLE_DB_PREFIX
  value: {{ .Values.database.prefix | quote }}
- name: MOODLE_DB_PASSWORD_FILE
  value: /run/secrets/db_password
- name: MOODLE_SESSION_HANDLER
  value: {{ .Values.sessions.handler | quote }}
{{- if or .Values.redis.enabled .Values.externalRedis.host }}
- name: MOODLE_REDIS_HOST
  value: {{ include "moodle.redisHost" . | quote }}
- name: MOODLE_REDIS_PORT
  value: {{ include "moodle.redisPort" . | quote }}
- name: MOODLE_REDIS_PASSWORD_FILE
  value: /run/secrets/redis_password
{{- end }}
- name: MOODLE_ADMIN_PASSWORD_FILE
  value: /run/secrets/moodle_admin_password
{{- with .Values.web.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes shared by web, cron and Jobs. */}}
{{- define "moodle.volumes" -}}
- name: moodledata
{{- if .Values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ default (printf "%s-moodledata" (include "moodle.fullname" .)) .Values.persistence.existingClaim }}
{{- else }}
  emptyDir: {}
{{- end }}
- name: secrets
  secret:
    secretName: {{ include "moodle.secretName" . }}
    defaultMode: 0440
    items:
      - key: {{ .Values.auth.keys.dbPassword }}
        path: db_password
      - key: {{ .Values.auth.keys.redisPassword }}
        path: redis_password
      - key: {{ .Values.auth.keys.adminPassword }}
        path: moodle_admin_password
- name: tmp
  emptyDir: {}
- name: apache-run
  emptyDir: {}
- name: apache-log
  emptyDir: {}
{{- end -}}

{{- define "moodle.volumeMounts" -}}
- name: moodledata
  mountPath: /var/www/moodledata
- name: secrets
  mountPath: /run/secrets
  readOnly: true
- name: tmp
  mountPath: /tmp
- name: apache-run
  mountPath: /var/run/apache2
- name: apache-log
  mountPath: /var/log/apache2
{{- end -}}

{{/* Pod spec fragment shared by web, cron and Jobs. */}}
{{- define "moodle.podCommon" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.web.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.web.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
