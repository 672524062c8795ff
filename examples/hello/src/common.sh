# Shared by hello's hooks: where the charm keeps its state, and the greeting itself.
STATE_DIR="${CHARM_DIR:-.}/state"

greeting() {
  text="$(config-get greeting) $(config-get name)!"
  if [ "$(config-get shout)" = "True" ] || [ "$(config-get shout)" = "true" ]; then
    text=$(printf '%s' "$text" | tr '[:lower:]' '[:upper:]')
  fi
  printf '%s\n' "$text"
}
