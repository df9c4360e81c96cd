{{/*
Names. meshguard's cluster-scoped objects have fixed names because the binary
patches and RBAC scopes exactly these (webhook.MutatingConfigName,
webhook.ValidatingConfigName in the Go code).
*/}}
{{- define "meshguard.name" -}}
{{- .Values.serviceName -}}
{{- end -}}

{{/* The revision label value: Istio writes "default" for the default revision. */}}
{{- define "meshguard.revision" -}}
{{- if or (eq .Values.revision "") (eq .Values.revision "default") -}}default{{- else -}}{{ .Values.revision }}{{- end -}}
{{- end -}}

{{- define "meshguard.isDefaultRevision" -}}
{{- if eq (include "meshguard.revision" .) "default" -}}true{{- end -}}
{{- end -}}

{{- define "meshguard.mutatingName" -}}
meshguard-sidecar-injector{{ if not (include "meshguard.isDefaultRevision" .) }}-{{ .Values.revision }}{{ end }}
{{- end -}}

{{- define "meshguard.validatingName" -}}
meshguard-validator{{ if not (include "meshguard.isDefaultRevision" .) }}-{{ .Values.revision }}{{ end }}
{{- end -}}

{{/* cert-manager object names (selfSigned -> CA -> CA Issuer -> serving). */}}
{{- define "meshguard.servingCertName" -}}{{ include "meshguard.name" . }}-serving{{- end -}}
{{- define "meshguard.servingSecretName" -}}{{ include "meshguard.name" . }}-serving-tls{{- end -}}
{{- define "meshguard.caName" -}}{{ include "meshguard.name" . }}-ca{{- end -}}
{{- define "meshguard.selfSignedIssuerName" -}}{{ include "meshguard.name" . }}-selfsigned{{- end -}}
{{- define "meshguard.configMapName" -}}{{ include "meshguard.name" . }}-config{{- end -}}

{{- define "meshguard.labels" -}}
{{ include "meshguard.labelsWithoutRevision" . }}
istio.io/rev: {{ include "meshguard.revision" . | quote }}
{{- end -}}

{{- /*
The ValidatingWebhookConfiguration's labels: no istio.io/rev, which istiod's
validation controller selects to set its own CA as every webhook's caBundle.
*/ -}}
{{- define "meshguard.labelsWithoutRevision" -}}
app.kubernetes.io/name: meshguard
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | quote }}
{{- end -}}

{{- define "meshguard.selectorLabels" -}}
app.kubernetes.io/name: meshguard
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{- define "meshguard.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/*
Webhook clientConfig: the Service on port 443 (mapped to the container's 9443).
caBundle is left out: cert-manager's cainjector (certMode cert-manager) or
meshguard itself (certMode self) fills it in.
*/}}
{{- define "meshguard.clientConfig" -}}
service:
  name: {{ include "meshguard.name" .root | quote }}
  namespace: {{ .root.Release.Namespace | quote }}
  path: {{ .path | quote }}
  port: 443
{{- end -}}

{{/*
cainjector fills caBundle from the CA Certificate's Secret (not the serving
one), as certs.InjectCAFrom does: a renewed CA reaches caBundle before
meshguard serves a leaf signed by it.
*/}}
{{- define "meshguard.caInjectFrom" -}}
{{ .Release.Namespace }}/{{ include "meshguard.caName" . }}
{{- end -}}

{{/*
Istio's injector ConfigMaps (istioConfig.namespace set): names default to
Istio's, with the revision suffix Istio gives them for a revision.
*/}}
{{- define "meshguard.istioInjectorConfigMap" -}}
{{- .Values.istioConfig.injectorConfigMap | default (printf "istio-sidecar-injector%s" (ternary "" (printf "-%s" .Values.revision) (eq (include "meshguard.isDefaultRevision" .) "true"))) -}}
{{- end -}}
{{- define "meshguard.istioMeshConfigMap" -}}
{{- .Values.istioConfig.meshConfigMap | default (printf "istio%s" (ternary "" (printf "-%s" .Values.revision) (eq (include "meshguard.isDefaultRevision" .) "true"))) -}}
{{- end -}}
