// Recording a reference clip from the microphone. Browsers offer the microphone only to secure pages (https, or
// http on localhost), so `recordingUnavailable` says why when it cannot be offered.

export function recordingUnavailable() {
  if (!window.isSecureContext) return "Recording needs the page on https or localhost.";
  if (!navigator.mediaDevices?.getUserMedia || !window.MediaRecorder) return "This browser cannot record audio.";
  return null;
}

// Starts recording at once; the returned function stops it and resolves with the clip as a File.
export async function startRecording() {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const recorder = new MediaRecorder(stream);
  const parts = [];
  recorder.ondataavailable = (event) => parts.push(event.data);
  const stopped = new Promise((resolve, reject) => {
    recorder.onstop = () => {
      for (const track of stream.getTracks()) track.stop();
      const type = recorder.mimeType || "audio/webm";
      resolve(new File(parts, `recording.${type.includes("ogg") ? "ogg" : "webm"}`, { type }));
    };
    recorder.onerror = (event) => reject(event.error ?? new Error("The recording failed."));
  });
  recorder.start();
  return () => {
    recorder.stop();
    return stopped;
  };
}
