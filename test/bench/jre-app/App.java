// SPDX-License-Identifier: GPL-2.0-or-later
// The application of the JRE cold-start benchmark (test/bench/jre-bench):
// what a small service does when it starts. It reads its properties,
// parses its XML configuration, checks a digest of it, starts an HTTP
// server on an ephemeral loopback port, asks itself for /health, stops
// the server and reports.
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Executors;
import java.util.logging.Logger;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

public class App {
    private static final Logger LOG = Logger.getLogger("app");

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (InputStream in = new FileInputStream("/app/app.properties")) {
            props.load(in);
        }
        byte[] xml = Files.readAllBytes(Path.of(props.getProperty("config", "/app/config.xml")));
        String digest = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(xml));
        Document doc = DocumentBuilderFactory.newInstance().newDocumentBuilder()
                .parse(new java.io.ByteArrayInputStream(xml));
        NodeList routes = doc.getElementsByTagName("route");
        List<String> paths = new ArrayList<>();
        for (int i = 0; i < routes.getLength(); i++)
            paths.add(((Element) routes.item(i)).getAttribute("path"));

        HttpServer server = HttpServer.create(
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
        server.setExecutor(Executors.newFixedThreadPool(2));
        for (String p : paths) {
            server.createContext(p, ex -> {
                byte[] body = ("ok " + ex.getRequestURI().getPath()).getBytes(StandardCharsets.UTF_8);
                ex.getResponseHeaders().add("Content-Type", "text/plain");
                ex.sendResponseHeaders(200, body.length);
                ex.getResponseBody().write(body);
                ex.close();
            });
        }
        server.start();
        int port = server.getAddress().getPort();
        HttpURLConnection c = (HttpURLConnection) new URL("http://127.0.0.1:" + port + "/health")
                .openConnection();
        int code = c.getResponseCode();
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        try (InputStream in = c.getInputStream()) {
            in.transferTo(body);
        }
        server.stop(0);
        ((java.util.concurrent.ExecutorService) server.getExecutor()).shutdownNow();
        LOG.fine("stopped");
        System.out.println("app started: " + props.getProperty("name") + ", " + paths.size()
                + " routes, /health " + code + " " + body.toString(StandardCharsets.UTF_8)
                + ", config sha256 " + digest.substring(0, 12));
    }
}
