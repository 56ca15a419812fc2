# The cloud simulator (Node.js 20 + its S3 store), for docker-compose.yml.
FROM node:20-bookworm-slim
WORKDIR /sim
COPY Resources/CloudSimulator/package.json Resources/CloudSimulator/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY Resources/CloudSimulator/bin bin
COPY Resources/CloudSimulator/src src
ENTRYPOINT ["node", "bin/start.js"]
