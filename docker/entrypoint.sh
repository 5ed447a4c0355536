#!/bin/sh
# Entrypoint of every container of docker-compose.yml (the scene3d images run it as their
# ENTRYPOINT; PostgreSQL, Valkey, Prometheus and Grafana get it mounted in front of their own).
#
# 1. Refuse to start when a secret is missing, empty, short or a placeholder: every file
#    under the secrets folder, and every file in it that a *_FILE variable names (so a
#    secret Compose failed to create is caught too). Exit 78 (EX_CONFIG).
# 2. MLflow reads its backend store URL only from its environment: each MLFLOW_*__FILE (and
#    AIRFLOW__*__FILE) variable (two underscores, as Grafana spells it: Airflow has options
#    that end in _file) is replaced by the variable without the suffix, holding the file's
#    content. Airflow itself is given `_CMD` options, scene3d reads *_FILE itself.
# 3. exec the command.
set -eu

secrets_dir="${SCENE3D_SECRETS_DIR:-/run/secrets}"
min_length="${SCENE3D_MIN_SECRET_LENGTH:-16}"

refuse() {
    echo "scene3d: refusing to start: $1" >&2
    echo "scene3d: generate the secrets with 'scene3d deploy secrets' (docs/deploy.md)" >&2
    exit 78
}

check_secret() {
    [ -r "$1" ] || refuse "secret file $1 is missing or unreadable"
    value=$(cat "$1")
    [ -n "$value" ] || refuse "secret $1 is empty"
    [ "${#value}" -ge "$min_length" ] || refuse "secret $1 is shorter than $min_length characters"
    lowered=$(printf '%s' "$value" | tr '[:upper:]' '[:lower:]')
    case "$lowered" in
        # Words, not fragments: a generated value (random URL-safe text) must never match.
        *changeme* | *change-me* | *change_me* | *placeholder* | *example* | *"<"*)
            refuse "secret $1 is a placeholder, not a generated value" ;;
    esac
}

if [ -d "$secrets_dir" ]; then
    for file in "$secrets_dir"/*; do
        [ -e "$file" ] || continue # an empty folder: the glob stays literal
        check_secret "$file"
    done
fi

# Names only (values may hold anything); `env` prints one NAME=value per line.
for name in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*_FILE\)=.*/\1/p'); do
    eval "path=\${$name}"
    case "$path" in
        "$secrets_dir"/*) check_secret "$path" ;;
        *) continue ;; # a *_FILE of the image or the platform that is no secret
    esac
    case "$name" in
        AIRFLOW__*__FILE | MLFLOW_*__FILE)
            target=${name%__FILE}
            value=$(cat "$path")
            export "$target=$value"
            unset "$name"
            ;;
    esac
done

exec "$@"
