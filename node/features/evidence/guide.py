"""The plain-language verification guide carried in every evidence package (English, Spanish)."""

from __future__ import annotations

from typing import Final

GUIDE_EN: Final = """\
HOW TO CHECK THIS EVIDENCE PACKAGE

This package holds a file collected by a human-rights organisation, and the record of everyone
who handled it (the "chain of custody"). You can check three things without trusting anyone's
word, and without access to the organisation's systems.

1. The file has not changed since it was collected.
   The folder "original" holds the file exactly as the organisation received it. Its SHA-256
   fingerprint, taken while it arrived, is in "original.sha256". On Linux or macOS, run in the
   unpacked folder:
       sha256sum -c original.sha256        (macOS: shasum -a 256 -c original.sha256)
   It must say "OK". Any change to the file, even one byte, gives another fingerprint.

2. The custody record is complete and in order.
   "custody-log.json" lists every time the file was received, viewed, downloaded, cleaned of
   identifying metadata, shared or exported, each entry with its time. Each entry is signed by
   the organisation's node and names the fingerprint of the entry before it, so an entry that is
   changed, removed or moved breaks the chain. "head.json", also signed, says how many entries
   the record has and which is the last, so none can be cut from the end.

3. The organisation that signed is the one you think it is.
   "issuer.json" holds the organisation's public keys. Its organisation id is a fingerprint of
   its first signing key. Ask the organisation, by a channel you trust (phone, in person), to read
   you its organisation id or its safety code, and compare them with what the verifier prints.

4. Another organisation's word on time (when the record has a "countersignature" entry).
   Another member of the coalition signed that the file existed at the time it states, without
   seeing the file: it signed a fingerprint of the file's fingerprint mixed with a random value
   kept in the entry. Its public keys are in "witnesses/<its organisation id>.json"; confirm its
   id or safety code with it, as in point 3.

5. The file's own content credentials (when the record has a "c2pa-check" entry).
   Some cameras and apps sign a C2PA record ("content credentials") into the file itself. The
   organisation's node checked it with the C2PA reference library when it was received, and the
   entry says what it found: "valid" (the file has not changed since it was signed;
   "signer_trusted" false means the signer is on no trust list, so the signature alone does not
   prove who signed), or "invalid" with the reasons and the library's codes ("altered": the file
   was changed after it was signed). You can check the original yourself, offline, with any C2PA
   tool such as c2patool. The working copy does not carry these credentials.

6. A ProofMode bundle's signatures (when the record has a "proofmode-check" entry).
   A ProofMode bundle is a ZIP from the ProofMode app: the photos or videos, a proof file for
   each (its SHA-256 and notes from the phone), OpenPGP signatures over both, and the phone's
   public key "pubkey.asc". The organisation's node checked it with GnuPG, using only that key,
   when it was received: "valid" means each file matches the hash in its proof and both
   signatures verify with the bundle's key ("signer" is that key's fingerprint). The key is the
   phone's own, so the signature shows the files are unchanged since that phone signed them, not
   who held the phone. To check it yourself: import "pubkey.asc" with gpg and run
   "gpg --verify" on each ".asc" file next to the file it signs.

To run all the checks at once, with Minga installed (no node or network is needed):
    minga evidence verify this-package.zip
It prints each problem it finds, or that the package verifies, with the organisation id and its
safety code. Exit status 0 means it verifies.

Staff names are not in the record: each entry says who acted with a code that only the
organisation can match to a person, if a court asks.
"""

GUIDE_ES: Final = """\
CÓMO VERIFICAR ESTE PAQUETE DE EVIDENCIA

Este paquete contiene un archivo recogido por una organización de derechos humanos y el registro
de todas las personas que lo manejaron (la "cadena de custodia"). Puede comprobar tres cosas sin
confiar en la palabra de nadie y sin acceso a los sistemas de la organización.

1. El archivo no ha cambiado desde que se recogió.
   La carpeta "original" contiene el archivo exactamente como la organización lo recibió. Su
   huella SHA-256, tomada mientras llegaba, está en "original.sha256". En Linux o macOS, ejecute
   en la carpeta descomprimida:
       sha256sum -c original.sha256        (macOS: shasum -a 256 -c original.sha256)
   Debe decir "OK". Cualquier cambio en el archivo, aunque sea de un byte, da otra huella.

2. El registro de custodia está completo y en orden.
   "custody-log.json" enumera cada vez que el archivo fue recibido, visto, descargado, limpiado
   de metadatos identificadores, compartido o exportado, cada entrada con su hora. Cada entrada
   está firmada por el nodo de la organización y nombra la huella de la entrada anterior, de modo
   que una entrada cambiada, quitada o movida rompe la cadena. "head.json", también firmado, dice
   cuántas entradas tiene el registro y cuál es la última, para que no se pueda cortar ninguna
   del final.

3. La organización que firmó es la que usted cree.
   "issuer.json" contiene las claves públicas de la organización. Su identificador de
   organización es una huella de su primera clave de firma. Pida a la organización, por un canal
   de confianza (teléfono, en persona), que le lea su identificador de organización o su código
   de seguridad, y compárelos con lo que muestra el verificador.

4. La palabra de otra organización sobre la fecha (si el registro tiene una entrada
   "countersignature").
   Otro miembro de la coalición firmó que el archivo existía en la hora que indica, sin ver el
   archivo: firmó una huella de la huella del archivo mezclada con un valor aleatorio que se
   guarda en la entrada. Sus claves públicas están en "witnesses/<su identificador>.json";
   confirme su identificador o código de seguridad con esa organización, como en el punto 3.

5. Las credenciales de contenido del propio archivo (si el registro tiene una entrada
   "c2pa-check").
   Algunas cámaras y aplicaciones firman un registro C2PA ("credenciales de contenido") dentro
   del archivo. El nodo de la organización lo comprobó con la biblioteca de referencia de C2PA
   al recibirlo, y la entrada dice lo que encontró: "valid" (el archivo no ha cambiado desde que
   se firmó; "signer_trusted" false significa que el firmante no está en ninguna lista de
   confianza, así que la firma por sí sola no prueba quién firmó), o "invalid" con los motivos y
   los códigos de la biblioteca ("altered": el archivo se modificó después de firmarse). Puede
   comprobar el original usted mismo, sin conexión, con cualquier herramienta C2PA como
   c2patool. La copia de trabajo no lleva estas credenciales.

6. Las firmas de un paquete de ProofMode (si el registro tiene una entrada "proofmode-check").
   Un paquete de ProofMode es un ZIP de la aplicación ProofMode: las fotos o vídeos, un archivo
   de prueba para cada uno (su SHA-256 y notas del teléfono), firmas OpenPGP sobre ambos y la
   clave pública del teléfono, "pubkey.asc". El nodo de la organización lo comprobó con GnuPG,
   usando solo esa clave, al recibirlo: "valid" significa que cada archivo coincide con la huella
   de su prueba y que ambas firmas se verifican con la clave del paquete ("signer" es la huella
   de esa clave). La clave es la del propio teléfono: la firma muestra que los archivos no han
   cambiado desde que ese teléfono los firmó, no quién tenía el teléfono. Para comprobarlo usted
   mismo: importe "pubkey.asc" con gpg y ejecute "gpg --verify" con cada archivo ".asc" junto al
   archivo que firma.

Para hacer todas las comprobaciones a la vez, con Minga instalado (no hace falta un nodo ni red):
    minga evidence verify este-paquete.zip
Muestra cada problema que encuentra, o que el paquete se verifica, con el identificador de la
organización y su código de seguridad. El código de salida 0 significa que se verifica.

Los nombres del personal no están en el registro: cada entrada dice quién actuó con un código que
solo la organización puede asociar a una persona, si un tribunal lo pide.
"""
