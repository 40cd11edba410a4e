# The Renraku application: FastAGI server, dialer and web portal in one process.
FROM python:3.11-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      sox ffmpeg espeak-ng open-jtalk open-jtalk-mecab-naist-jdic \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir . && renraku prompts voices
EXPOSE 8080 4573
CMD ["renraku", "run", "--no-asterisk"]
