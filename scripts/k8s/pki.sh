# Sourced by start-apiserver.sh and start-cluster.sh: sign a key pair with the test CA in $1.
#   k8s_sign PKI_DIR NAME SUBJECT [EXTENSIONS]   -> PKI_DIR/NAME.key, PKI_DIR/NAME.crt
# EXTENSIONS defaults to a client certificate (extendedKeyUsage=clientAuth).
k8s_sign() {
  local pki="$1" name="$2" subj="$3" ext="${4:-extendedKeyUsage=clientAuth}"
  openssl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$pki/$name.key" -out "$pki/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  chmod 600 "$pki/$name.key"
}
