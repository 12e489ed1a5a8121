// Package deploy holds no code: its tests check the deployment files
// (../Dockerfile, ../docker-compose.yml, nginx.conf) against the server
// they deploy, since CI has no Docker engine. nginx.conf is checked with
// the real `nginx -t`; the compose file is parsed and its environment
// loaded by package config; the Dockerfile's build command is run and its
// result checked to be static and to serve.
package deploy
