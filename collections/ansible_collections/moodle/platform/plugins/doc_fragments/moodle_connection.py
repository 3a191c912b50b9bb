# Copyright (c) moodle.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  connection:
    description:
      - How to reach the Moodle application container. V(docker) runs C(docker exec) in a (Compose) container;
        a Kubernetes pod connection can be added behind the same options.
    type: str
    default: docker
    choices: [docker]
  container:
    description: Name of the application container (Compose service C(web) of project C(moodle) is C(moodle-web-1)).
    type: str
    default: moodle-web-1
  docker_host:
    description: Docker engine URL.
    type: str
    default: unix:///var/run/docker.sock
  user:
    description: User the Moodle CLI runs as inside the container (the web server user).
    type: str
    default: www-data
  moodle_dir:
    description: Moodle code directory inside the container.
    type: path
    default: /var/www/moodle
  php:
    description: PHP binary inside the container.
    type: str
    default: php
requirements:
  - docker (Python SDK) on the host that runs the module
"""
